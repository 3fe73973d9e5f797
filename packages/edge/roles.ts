/**
 * Roles of a bearer token, ordered: a role allows everything the roles
 * below it allow (read < write < admin).
 */
export const ROLES = ["read", "write", "admin"] as const;

/** One of {@link ROLES}. */
export type Role = typeof ROLES[number];

/** True when a caller holding `have` may use a route that needs `need`. */
export function roleAllows(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}
