// Who is logged in. The token lives in localStorage so a reloaded tab stays logged in;
// an expired or refused token sends the person back to the login page with the reason.
import { reactive } from "vue";
import { ApiError, onUnauthorized, request, setToken } from "@/api/http";
import { live } from "@/api/socket";
import type { Role, User } from "@/api/types";

const TOKEN_KEY = "yb.token";

export const session = reactive({
  user: null as User | null,
  /** Why the person was sent back to the login page, shown there. */
  notice: "",
});

let onLoggedOut: () => void = () => {};

export function whenLoggedOut(handler: () => void): void {
  onLoggedOut = handler;
}

function begin(token: string, user: User): void {
  localStorage.setItem(TOKEN_KEY, token);
  setToken(token);
  session.user = user;
  session.notice = "";
  live.connect(token);
}

export async function login(username: string, password: string): Promise<User> {
  const result = await request("post", "/api/auth/login", { body: { username, password } });
  begin(result.token, result.user);
  return result.user;
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
  }
}

onUnauthorized((error) => logout(error.message));
live.onRefused = (error) => logout(error.message);
