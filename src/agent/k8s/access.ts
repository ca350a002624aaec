/**
 * What the transport needs of the API server's address and credentials:
 * the TLS options and headers of a request, valid now, and a way to say
 * that the server refused them (401), so that the next request brings fresh
 * ones. kubeconfig.ts provides it.
 */
export interface ApiRequestOptions {
  readonly headers: Readonly<Record<string, string>>;
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly rejectUnauthorized: boolean;
  readonly servername?: string;
}

export interface ApiAccess {
  /** The server URL, without a trailing slash. */
  readonly server: string;
  /** TLS options and headers for one request, with credentials that are valid now. */
  requestOptions(): Promise<ApiRequestOptions>;
  /** The server answered 401: the next request resolves the credentials again. */
  unauthorized(): void;
}
