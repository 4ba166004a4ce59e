import type { Role } from './api/types';

const RANK: Record<Role, number> = { user: 0, analyst: 1, admin: 2, superadmin: 3 };

export type Permission = 'investigate' | 'analyse' | 'delete-evidence' | 'view-logs' | 'system-config' | 'manage-users' | 'settings';

const LEAST: Record<Permission, Role> = {
  investigate: 'user',
  analyse: 'analyst',
  'delete-evidence': 'admin',
  'view-logs': 'admin',
  settings: 'admin',
  'system-config': 'superadmin',
  'manage-users': 'superadmin',
};

export function allows(role: Role | undefined | null, permission: Permission): boolean {
  if (!role) return false;
  return RANK[role] >= RANK[LEAST[permission]];
}
