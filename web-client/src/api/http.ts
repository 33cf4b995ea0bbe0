// The typed HTTP layer. Paths, methods, path/query parameters, request bodies and answers come
// from schema.d.ts, generated from the server's OpenAPI document (openapi.json, checked against
// the server by tests/test_web_contract.py); a call to a path or with a body the server does
// not have, or a page reading a key the answer does not have, is a type error at build time.
import type { paths } from "./schema";

export type Method = "get" | "post" | "put" | "patch" | "delete";
type PathsWith<M extends Method> = {
  [P in keyof paths]: paths[P][M] extends undefined ? never : P;
}[keyof paths];
type Operation<M extends Method, P extends keyof paths> = NonNullable<paths[P][M]>;
type PathParams<O> = O extends { parameters: { path: infer PP } } ? (PP extends object ? PP : never) : never;
type QueryParams<O> = O extends { parameters: { query?: infer Q } } ? (Q extends object ? Q : never) : never;
type JsonBody<R> = R extends { content: { "application/json": infer B } } ? B : never;
type Body<O> = O extends { requestBody?: infer R } ? JsonBody<R> : never;
/** The JSON success body (any 2xx), or null where the route answers 204 without one. */
type Success<R> =
  | (R extends { "2XX": { content: { "application/json": infer B } } } ? B : never)
  | (R extends { 204: unknown } ? null : never);
type Answer<M extends Method, P extends keyof paths> = Operation<M, P> extends { responses: infer R } ? Success<R> : never;

type Options<O> = ([PathParams<O>] extends [never]
  ? { path?: undefined }
  : { path: { [K in keyof PathParams<O>]: number | string } }) &
  ([QueryParams<O>] extends [never] ? { query?: undefined } : { query?: QueryParams<O> }) &
  ([Body<O>] extends [never] ? { body?: undefined } : { body: Body<O> });

/** An error a person can act on: the server's zh-CN message, or what went wrong on the way. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly detail: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }
}

let token: string | null = null;
let unauthorized: (error: ApiError) => void = () => {};
let enrolmentRequired: () => void = () => {};
let networkMessage = "无法连接服务器，请检查网络后重试";

export function setToken(value: string | null): void {
  token = value;
}
export function getToken(): string | null {
  return token;
}
export function onUnauthorized(handler: (error: ApiError) => void): void {
  unauthorized = handler;
}
/** The session must first enrol a second factor (403 2fa_enrolment_required). */
export function onEnrolmentRequired(handler: () => void): void {
  enrolmentRequired = handler;
}
export function enrolmentNeeded(): void {
  enrolmentRequired();
}
export function setNetworkMessage(message: string): void {
  networkMessage = message;
}

export function authHeaders(): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

export function fillPath(template: string, params: Record<string, number | string> | undefined): string {
  return template.replace(/{(\w+)}/g, (_, name: string) => {
    const value = params?.[name];
    if (value === undefined) throw new Error(`missing path parameter ${name}`);
    return encodeURIComponent(String(value));
  });
}

/** Turn a response that is not OK into an ApiError carrying the server's message. */
export async function errorFrom(response: Response): Promise<ApiError> {
  let code = `http_${response.status}`;
  let message = response.statusText || `HTTP ${response.status}`;
  let detail: Record<string, unknown> = {};
  try {
    const body = (await response.json()) as { error?: { code: string; message: string; detail?: Record<string, unknown> } };
    if (body.error) {
      code = body.error.code;
      message = body.error.message;
      detail = body.error.detail ?? {};
    }
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, code, message, detail);
}

export function networkError(cause: unknown): ApiError {
  return new ApiError(0, "network", networkMessage, { cause: String(cause) });
}

export async function request<M extends Method, P extends PathsWith<M> & string>(
  method: M,
  path: P,
  ...[options]: Options<Operation<M, P>> extends { path?: undefined; body?: undefined }
    ? [options?: Options<Operation<M, P>>]
    : [options: Options<Operation<M, P>>]
): Promise<Answer<M, P>> {
  const opts = (options ?? {}) as { path?: Record<string, number | string>; query?: Record<string, unknown>; body?: unknown };
  let url = fillPath(path, opts.path);
  if (opts.query) {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(opts.query)) {
      if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
    }
    const text = search.toString();
    if (text) url += `?${text}`;
  }
  const headers: Record<string, string> = { ...authHeaders() };
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  let response: Response;
  try {
    response = await fetch(url, {
      method: method.toUpperCase(),
      headers,
      body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
    });
  } catch (cause) {
    throw networkError(cause);
  }
  if (response.status === 204) return null as Answer<M, P>;
  if (!response.ok) {
    const error = await errorFrom(response);
    if (response.status === 401 && path !== "/api/auth/login") unauthorized(error);
    if (response.status === 403 && error.code === "2fa_enrolment_required") enrolmentRequired();
    throw error;
  }
  return (await response.json()) as Answer<M, P>;
}
