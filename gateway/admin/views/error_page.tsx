/** An error as the console shows it: status, the error's code and its message. */
import { Layout, Notice } from "./layout.tsx";
import type { Viewer } from "./layout.tsx";

export interface ErrorPageProps {
  status: number;
  code: string;
  message: string;
  viewer: Viewer | undefined;
  fragment: boolean;
}

export function ErrorBox({ status, code, message }: Pick<ErrorPageProps, "status" | "code" | "message">) {
  return (
    <Notice kind="error">
      <p class="font-medium">{message}</p>
      <p class="mt-1 font-mono text-xs">
        {code} · HTTP {status}
      </p>
    </Notice>
  );
}

export function ErrorPage(props: ErrorPageProps) {
  if (props.fragment) return <ErrorBox {...props} />;
  return (
    <Layout title="Error" viewer={props.viewer}>
      <div class="mx-auto max-w-xl space-y-4">
        <h1 class="text-xl font-semibold">Something went wrong</h1>
        <ErrorBox {...props} />
        <a href="/admin" class="btn-secondary">
          Back to the dashboard
        </a>
      </div>
    </Layout>
  );
}
