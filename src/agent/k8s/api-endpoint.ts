/**
 * The API server's address and how to authenticate to it, as read from a
 * kubeconfig context or the in-cluster service account (kubeconfig.ts), and
 * applied to each request by credentials.ts.
 */

/** A file's content, by path (read when needed) or inline. */
export type FileOrData = { readonly file: string } | { readonly data: Buffer };

/** An exec credential plugin (client.authentication.k8s.io ExecCredential). */
export interface ExecPlugin {
  readonly apiVersion: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: readonly { readonly name: string; readonly value: string }[];
  /** Never, IfAvailable or Always; the agent has no terminal, so Always is refused. */
  readonly interactiveMode: string;
  /** Hand the plugin the cluster's server and CA (KUBERNETES_EXEC_INFO spec.cluster). */
  readonly provideClusterInfo: boolean;
}

/** How requests prove who they are: a client certificate, and/or one credential for the Authorization header. */
export interface UserAuth {
  readonly clientCert?: { readonly cert: FileOrData; readonly key: FileOrData };
  readonly credential?:
    | { readonly kind: 'token'; readonly token: string }
    /** Re-read for every request: in-cluster tokens are rotated. */
    | { readonly kind: 'token-file'; readonly file: string }
    | { readonly kind: 'basic'; readonly username: string; readonly password: string }
    | { readonly kind: 'exec'; readonly plugin: ExecPlugin };
}

/** Everything a request to the API server needs, resolved from one context. */
export interface ApiEndpoint {
  /** The server URL, without a trailing slash. */
  readonly server: string;
  /** PEM bundle that verifies the server; absent = the system's CAs. */
  readonly ca?: FileOrData;
  readonly insecureSkipTlsVerify: boolean;
  readonly tlsServerName?: string;
  readonly user: UserAuth;
}
