/**
 * Kubernetes name syntax (apimachinery's validation.IsQualifiedName and
 * friends). Each check returns undefined when the value is fine, or the reason
 * it is not, so that the caller can attach the field path it came from.
 */

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** The name part of a label key, and a non-empty label value. */
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** Label keys: `[prefix/]name`, prefix a DNS subdomain ≤ 253, name ≤ 63. */
export function checkLabelKey(key: string): string | undefined {
  const parts = key.split('/');
  if (parts.length > 2) return `label key "${key}" has more than one "/"`;
  const name = parts[parts.length - 1] ?? '';
  if (parts.length === 2) {
    const prefix = parts[0] ?? '';
    if (prefix === '') return `label key "${key}" has an empty prefix before "/"`;
    const why = checkDnsSubdomain(prefix);
    if (why !== undefined) return `label key "${key}": prefix ${why}`;
  }
  if (name === '') return `label key "${key}" has an empty name`;
  if (name.length > 63) return `label key "${key}": name is longer than 63 characters`;
  if (!QUALIFIED_NAME.test(name)) {
    return `label key "${key}": name must be alphanumerics, "-", "_" or ".", starting and ending with an alphanumeric`;
  }
  return undefined;
}

/** Label values: empty, or ≤ 63 alphanumerics, "-", "_", "." starting and ending alphanumeric. */
export function checkLabelValue(value: string): string | undefined {
  if (value === '') return undefined;
  if (value.length > 63) return `label value "${value}" is longer than 63 characters`;
  if (!QUALIFIED_NAME.test(value)) {
    return `label value "${value}" must be alphanumerics, "-", "_" or ".", starting and ending with an alphanumeric`;
  }
  return undefined;
}

/** Namespace names (RFC 1123 labels). */
export function checkDnsLabel(s: string): string | undefined {
  if (s.length > 63) return `"${s}" is longer than 63 characters`;
  if (!DNS1123_LABEL.test(s)) return `"${s}" must be lowercase alphanumerics or "-", starting and ending with an alphanumeric`;
  return undefined;
}

/** Object names (RFC 1123 subdomains): pods, policies. */
export function checkDnsSubdomain(s: string): string | undefined {
  if (s.length > 253) return `"${s}" is longer than 253 characters`;
  if (!DNS1123_SUBDOMAIN.test(s)) {
    return `"${s}" must be lowercase alphanumerics, "-" or ".", starting and ending with an alphanumeric`;
  }
  return undefined;
}

/**
 * Named ports (IANA_SVC_NAME, RFC 6335): 1–15 lowercase alphanumerics or "-",
 * at least one letter, no "-" at either end and no "--".
 */
export function checkPortName(s: string): string | undefined {
  if (s.length === 0 || s.length > 15) return `port name "${s}" must be 1 to 15 characters`;
  if (!/^[-a-z0-9]+$/.test(s)) return `port name "${s}" must be lowercase alphanumerics or "-"`;
  if (!/[a-z]/.test(s)) {
    return /^[0-9]+$/.test(s)
      ? `port name "${s}" must contain a letter (a port number is written without quotes)`
      : `port name "${s}" must contain a letter`;
  }
  if (s.startsWith('-') || s.endsWith('-')) return `port name "${s}" must not start or end with "-"`;
  if (s.includes('--')) return `port name "${s}" must not contain "--"`;
  return undefined;
}
