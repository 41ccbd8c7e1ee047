/** The login page: the embedded admin token and/or email + password through Supabase Auth. */
import { Layout, Notice } from "./layout.tsx";

export interface LoginProps {
  tokenLogin: boolean;
  passwordLogin: boolean;
  next: string;
  error?: string;
  email?: string;
}

export function LoginPage({ tokenLogin, passwordLogin, next, error, email }: LoginProps) {
  return (
    <Layout title="Log in">
      <div class="mx-auto mt-10 max-w-sm space-y-6">
        <h1 class="text-2xl font-semibold tracking-tight">Log in to the console</h1>
        {error === undefined ? null : <Notice kind="error">{error}</Notice>}
        {!tokenLogin && !passwordLogin ? (
          <Notice kind="error">
            No login is configured: set SF_ADMIN_TOKEN, or SF_SUPABASE_URL with SF_SUPABASE_ANON_KEY and
            SF_JWT_SECRET.
          </Notice>
        ) : null}
        {passwordLogin ? (
          <form method="post" action="/admin/login" class="card space-y-4">
            <input type="hidden" name="next" value={next} />
            <div>
              <label for="email" class="field-label">
                Email
              </label>
              <input
                id="email"
                name="email"
                type="email"
                autocomplete="username"
                required
                class="field-input"
                value={email ?? ""}
              />
            </div>
            <div>
              <label for="password" class="field-label">
                Password
              </label>
              <input
                id="password"
                name="password"
                type="password"
                autocomplete="current-password"
                required
                class="field-input"
              />
            </div>
            <button type="submit" class="btn-primary w-full">
              Log in
            </button>
          </form>
        ) : null}
        {tokenLogin ? (
          <form method="post" action="/admin/login" class="card space-y-4">
            <input type="hidden" name="next" value={next} />
            <div>
              <label for="token" class="field-label">
                Admin token
              </label>
              <input
                id="token"
                name="token"
                type="password"
                autocomplete="off"
                required
                class="field-input"
              />
              <p class="field-help">
                The token `npm run dev` printed (SF_ADMIN_TOKEN), or an admin's Supabase access token.
              </p>
            </div>
            <button type="submit" class="btn-primary w-full">
              Log in with token
            </button>
          </form>
        ) : null}
      </div>
    </Layout>
  );
}
