/**
 * Console login with an email and password through the platform's Supabase Auth
 * (`signInWithPassword`): the access token it returns is then held to the same check as any admin
 * JWT (signature with the platform's JWT secret, an admin `role` claim).
 */
import { createClient } from "@supabase/supabase-js";
import { RealtimeNotUsed } from "../../actors/index.ts";
import { BusErrorCodes, SfError } from "../../bus/index.ts";
import { GatewayErrorCodes } from "../errors.ts";

export class SupabaseLogin {
  readonly #client: ReturnType<typeof createClient>;

  constructor(url: string, anonKey: string) {
    this.#client = createClient(url, anonKey, {
      auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
      // Login never opens Realtime; on Node 20 supabase-js wants a transport up front (see RealtimeNotUsed).
      realtime: { transport: RealtimeNotUsed as never },
    });
  }

  /** The user's access token (a JWT), or LOGIN_FAILED; SF_ERR_UNAVAILABLE-like 503 when Auth is down. */
  async accessToken(email: string, password: string): Promise<string> {
    let result: Awaited<ReturnType<ReturnType<typeof createClient>["auth"]["signInWithPassword"]>>;
    try {
      result = await this.#client.auth.signInWithPassword({ email, password });
    } catch (err) {
      throw new SfError(BusErrorCodes.UNAVAILABLE, "Supabase Auth could not be reached", {
        cause: err,
        retryable: true,
      });
    }
    const { data, error } = result;
    if (error !== null) {
      // 400/401/422 mean bad credentials; anything else is Auth itself failing.
      const status = typeof error.status === "number" ? error.status : 0;
      if (status === 0 || status >= 500) {
        throw new SfError(BusErrorCodes.UNAVAILABLE, "Supabase Auth could not be reached", {
          retryable: true,
        });
      }
      throw new SfError(GatewayErrorCodes.LOGIN_FAILED, "the email or password is wrong");
    }
    const token = data.session?.access_token;
    if (token === undefined)
      throw new SfError(GatewayErrorCodes.LOGIN_FAILED, "Supabase Auth gave no session");
    return token;
  }
}
