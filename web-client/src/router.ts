import { createRouter, createWebHistory, type RouteRecordRaw } from "vue-router";
import type { Role } from "@/api/types";
import { homeFor, mustEnrol, restore, session, whenEnrolmentRequired, whenLoggedOut } from "@/state/session";
import { deviceCheckPassed } from "@/state/deviceCheck";
import LoginView from "@/views/LoginView.vue";

declare module "vue-router" {
  interface RouteMeta {
    roles?: Role[];
    wide?: boolean;
    public?: boolean; // opens without login (a link sent to a resident)
  }
}

const routes: RouteRecordRaw[] = [
  { path: "/login", name: "login", component: LoginView }, // in the first load: a cold visit starts here
  { path: "/", name: "home", component: { render: () => null } },
  {
    path: "/worker/check",
    name: "device-check",
    component: () => import("@/views/worker/DeviceCheckView.vue"),
    meta: { roles: ["worker"] },
  },
  { path: "/worker", name: "worker", component: () => import("@/views/worker/WorkerView.vue"), meta: { roles: ["worker"] } },
  { path: "/clerk", name: "clerk", component: () => import("@/views/clerk/ClerkView.vue"), meta: { roles: ["clerk"] } },
  {
    path: "/wall",
    name: "wall",
    component: () => import("@/views/supervisor/WallView.vue"),
    meta: { roles: ["supervisor", "admin"], wide: true },
  },
  {
    path: "/reports",
    name: "reports",
    component: () => import("@/views/supervisor/ReportsView.vue"),
    meta: { roles: ["supervisor", "admin"], wide: true },
  },
  {
    path: "/c/:token",
    name: "public-checklist",
    component: () => import("@/views/public/ChecklistView.vue"),
    meta: { public: true },
  },
  {
    path: "/r/:token",
    name: "public-reminder",
    component: () => import("@/views/public/ReminderView.vue"),
    meta: { public: true },
  },
  {
    path: "/certificates",
    name: "certificates",
    component: () => import("@/views/admin/CertificatesView.vue"),
    meta: { roles: ["admin"], wide: true },
  },
  {
    path: "/a/:token",
    name: "alert-link",
    component: () => import("@/views/public/AlertLinkView.vue"),
    meta: { public: true },
  },
  { path: "/points", name: "points", component: () => import("@/views/admin/PointsView.vue"), meta: { roles: ["admin"] } },
  { path: "/catalog", name: "catalog", component: () => import("@/views/admin/CatalogView.vue"), meta: { roles: ["admin"], wide: true } },
  { path: "/m/login", name: "resident-sign-in", component: () => import("@/views/resident/ResidentSignIn.vue"), meta: { public: true } },
  {
    path: "/m",
    name: "resident",
    component: () => import("@/views/worker/WorkerView.vue"),
    props: { direct: true },
    meta: { roles: ["resident"] },
  },
  {
    path: "/ledger",
    name: "ledger",
    component: () => import("@/views/ledger/LedgerView.vue"),
    meta: { roles: ["worker", "clerk", "supervisor", "admin", "auditor"], wide: true },
  },
  { path: "/outbox", name: "outbox", component: () => import("@/views/admin/OutboxView.vue"), meta: { roles: ["admin"] } },
  { path: "/audit", name: "audit", component: () => import("@/views/auditor/AuditView.vue"), meta: { roles: ["auditor"] } },
  { path: "/expert", name: "expert", component: () => import("@/views/expert/ExpertView.vue"), meta: { roles: ["expert"] } },
  {
    path: "/2fa",
    name: "two-factor",
    component: () => import("@/views/TwoFactorView.vue"),
    meta: { roles: ["clerk", "supervisor", "admin", "auditor"] },
  },
  { path: "/:rest(.*)*", redirect: "/" },
];

export const router = createRouter({ history: createWebHistory("/app/"), routes });

router.beforeEach(async (to) => {
  if (to.name === "login" || to.meta.public) return true;
  let known = false;
  try {
    known = await restore();
  } catch {
    known = false;
  }
  const user = session.user;
  if (!known || !user) {
    if (to.path.startsWith("/m")) return { name: "resident-sign-in" }; // a resident's phone: the code sign-in
    return { name: "login", query: to.fullPath !== "/" ? { next: to.fullPath } : {} };
  }
  if (mustEnrol(user) && to.name !== "two-factor") return { name: "two-factor" };
  const home = homeFor(user.role);
  if (to.name === "home") return home;
  if (to.meta.roles && !to.meta.roles.includes(user.role)) return home;
  if (to.name === "worker" && !deviceCheckPassed()) return { name: "device-check" };
  return true;
});

whenLoggedOut(() => {
  const resident = router.currentRoute.value.path.startsWith("/m");
  void router.push({ name: resident ? "resident-sign-in" : "login" });
});
whenEnrolmentRequired(() => {
  void router.push({ name: "two-factor" });
});
