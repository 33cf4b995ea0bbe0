/** What went wrong, in words for the person at the screen: an Error's message (for an ApiError
 * the server's zh-CN message), else whatever was thrown, as text. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
