// Who is logged in. The token lives in localStorage so a reloaded tab stays logged in;
// an expired or refused token sends the person back to the login page with the reason.
// A session that must first enrol a second factor (YUNBANG_REQUIRE_2FA) opens no live
// connection (the server refuses it) until enrolment is confirmed.
import { reactive } from "vue";
import { ApiError, getToken, onEnrolmentRequired, onUnauthorized, request, setToken } from "@/api/http";
import { live } from "@/api/socket";
import type { Me, Role, Schemas } from "@/api/types";
import { setServiceZone } from "@/lib/format";

const TOKEN_KEY = "yb.token";

export const session = reactive({
  user: null as Me | null,
  /** Why the person was sent back to the login page, shown there. */
  notice: "",
});

let onLoggedOut: () => void = () => {};
let onMustEnrol: () => void = () => {};

export function whenLoggedOut(handler: () => void): void {
  onLoggedOut = handler;
}

export function whenEnrolmentRequired(handler: () => void): void {
  onMustEnrol = handler;
}

/** The account must enrol a second factor before it may do anything else. */
export function mustEnrol(user: Me | null = session.user): boolean {
  return !!user?.two_factor?.required && !user.two_factor.enrolled;
}

function begin(token: string, user: Me): void {
  localStorage.setItem(TOKEN_KEY, token);
  setToken(token);
  session.user = user;
  session.notice = "";
  setServiceZone(user.service_timezone);
  if (mustEnrol(user)) live.disconnect();
  else if (!live.connected) live.connect(token);
}

/** The second factor of an enrolled account: a code from the app, or a recovery code. */
export type SecondFactor = { otp: string } | { recovery_code: string };

export async function login(username: string, password: string, second?: SecondFactor): Promise<Me> {
  const result = await request("post", "/api/auth/login", { body: { username, password, ...second } });
  live.disconnect();
  begin(result.token, result.user);
  return result.user;
}

/** 屏对屏: a resident or firm signs in with the code texted to their phone. */
export async function residentSignIn(body: Schemas["ResidentSignIn"]): Promise<Me> {
  const result = await request("post", "/api/resident/sign-in", { body });
  live.disconnect();
  begin(result.token, result.user);
  return result.user;
}

/** Read the account again (after enrolling): a session that may now do everything goes live. */
export async function refreshUser(): Promise<Me> {
  const token = getToken();
  const user = await request("get", "/api/me");
  if (token) begin(token, user);
  return user;
}

/** After a reload: use the stored token if the server still accepts it. */
export async function restore(): Promise<boolean> {
  if (session.user) return true;
  const token = localStorage.getItem(TOKEN_KEY);
  if (!token) return false;
  setToken(token);
  try {
    begin(token, await request("get", "/api/me"));
    return true;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      localStorage.removeItem(TOKEN_KEY);
      setToken(null);
      return false;
    }
    throw error;
  }
}

/** 退出登录: the server ends this token everywhere, then the page forgets it. */
export async function signOut(): Promise<void> {
  try {
    await request("post", "/api/auth/logout", {});
  } catch {
    // Already refused or offline: the token is forgotten here all the same.
  }
  logout();
}

export function logout(notice = ""): void {
  localStorage.removeItem(TOKEN_KEY);
  setToken(null);
  live.disconnect();
  session.user = null;
  session.notice = notice;
  onLoggedOut();
}

export function homeFor(role: Role): string {
  switch (role) {
    case "worker":
      return "/worker";
    case "clerk":
      return "/clerk";
    case "expert":
      return "/expert";
    case "supervisor":
    case "admin":
      return "/wall";
    case "auditor":
      return "/audit";
    case "resident":
      return "/m";
  }
}

onUnauthorized((error) => logout(error.message));
live.on("session.revoked", (revoked) => {
  const token = localStorage.getItem(TOKEN_KEY);
  if (token && revoked.session_ids.includes(sessionOf(token))) logout(REVOKED[revoked.reason] ?? REVOKED.logout);
});

const REVOKED: Record<string, string> = {
  logout: "已在其他地方退出登录，请重新登录",
  password: "密码已修改，请重新登录",
  role: "账号角色已变更，请重新登录",
  disabled: "账号已停用",
  "2fa_reset": "两步验证已被管理员重置，请重新登录并重新绑定",
};

/** The session a token names (its `sid` claim), to tell whether a revocation is about this tab. */
function sessionOf(token: string): string {
  try {
    const payload = (token.split(".")[1] ?? "").replace(/-/g, "+").replace(/_/g, "/");
    return String(JSON.parse(atob(payload)).sid ?? "");
  } catch {
    return "";
  }
}
onEnrolmentRequired(() => {
  if (session.user?.two_factor) session.user.two_factor = { ...session.user.two_factor, required: true, enrolled: false };
  live.disconnect();
  onMustEnrol();
});
live.onRefused = (error) => logout(error.message);
