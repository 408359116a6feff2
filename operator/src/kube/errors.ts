// Errors from the Kubernetes API, classified the way reconcilers and the CLI need them:
// not found (done), conflict/already exists (requeue or ignore), invalid (terminal, show the message).
import { ApiException } from '@kubernetes/client-node';

interface StatusBody {
  message?: string;
  reason?: string;
  code?: number;
}

/** The HTTP status of an API error, or undefined for anything else (network errors, bugs). */
export function apiErrorCode(e: unknown): number | undefined {
  if (e instanceof ApiException) return e.code;
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

function statusBody(e: unknown): StatusBody | undefined {
  const body = (e as { body?: unknown } | null)?.body;
  if (typeof body === 'string') {
    try {
      return JSON.parse(body) as StatusBody;
    } catch {
      return { message: body };
    }
  }
  return typeof body === 'object' && body !== null ? body : undefined;
}

/** The API server's own message (e.g. which field a CEL rule rejected), not the HTTP dump. */
export function apiErrorMessage(e: unknown): string {
  const s = statusBody(e);
  if (s?.message) return s.message;
  return (e as Error).message ?? String(e);
}

export const isNotFound = (e: unknown): boolean => apiErrorCode(e) === 404;
export const isConflict = (e: unknown): boolean => apiErrorCode(e) === 409;
export const isInvalid = (e: unknown): boolean => apiErrorCode(e) === 422;
/** 403 because the namespace is being deleted: nothing new may be created in it (a server-side apply to a missing object is a create). */
export const isNamespaceTerminating = (e: unknown): boolean => apiErrorCode(e) === 403 && /NamespaceTerminating|because it is being terminated/.test(JSON.stringify(statusBody(e) ?? {}));

/** Re-throws an API error as a plain Error whose message says what was being done and why it failed. */
export function explain(doing: string, e: unknown): Error {
  const code = apiErrorCode(e);
  return new Error(`${doing}: ${apiErrorMessage(e)}${code ? ` (HTTP ${code})` : ''}`);
}
