import { describe, expect, it } from 'vitest';
import { identityFromClaims, mergeRoles, tenantFromClaims } from './identity-from-claims.js';

describe('mergeRoles', () => {
  it('unions claims.roles, Keycloak realm roles, mapped groups and grants, without duplicates', () => {
    const claims = {
      sub: 'ann',
      roles: ['editor', 'viewer'],
      realm_access: { roles: ['viewer', 'offline_access'] },
      groups: ['/staff', '/unmapped'],
    };
    const roles = mergeRoles(claims, {
      groupRoles: { '/staff': ['editor', 'reviewer'] },
      grants: { ann: ['owner'], bob: ['nope'], '*': ['user'] },
    });
    expect(roles).toEqual(['editor', 'viewer', 'offline_access', 'reviewer', 'owner', 'user']);
  });

  it('grants nothing for groups that are not mapped', () => {
    expect(mergeRoles({ groups: ['admins'] })).toEqual([]);
    expect(mergeRoles({ groups: ['admins'] }, { groupRoles: {} })).toEqual([]);
  });

  it('ignores claims of the wrong shape instead of failing', () => {
    const claims = { roles: 'admin', realm_access: { roles: 'admin' }, groups: [7, null, 'g'] };
    expect(mergeRoles(claims, { groupRoles: { g: ['from-group'] } })).toEqual(['from-group']);
    expect(mergeRoles({ roles: ['ok', 1, '', { x: 1 }], realm_access: null })).toEqual(['ok']);
  });

  it("grants '*' to every caller with claims, and per-sub grants only to a string sub", () => {
    expect(mergeRoles({}, { grants: { '*': ['user'] } })).toEqual(['user']);
    expect(mergeRoles({ sub: 42 }, { grants: { '42': ['x'], '*': ['user'] } })).toEqual(['user']);
  });

  it('does not take roles from Object.prototype for a sub or group like "constructor"', () => {
    const claims = { sub: 'constructor', groups: ['toString', '__proto__'] };
    expect(mergeRoles(claims, { groupRoles: {}, grants: {} })).toEqual([]);
    const withProto = JSON.parse('{"__proto__": ["proto-role"]}') as Record<string, string[]>;
    expect(mergeRoles(claims, { groupRoles: withProto })).toEqual(['proto-role']);
  });
});

describe('tenantFromClaims', () => {
  it('reads tenant_id, or the configured claim, else the default, else null', () => {
    expect(tenantFromClaims({ tenant_id: 't1' })).toBe('t1');
    expect(tenantFromClaims({ tenant_id: 't1', org: 'acme' }, { tenantClaim: 'org' })).toBe('acme');
    expect(tenantFromClaims({}, { defaultTenantId: 'main' })).toBe('main');
    expect(tenantFromClaims({ tenant_id: 7 }, { defaultTenantId: 'main' })).toBe('main');
    expect(tenantFromClaims({ tenant_id: '' })).toBeNull();
    expect(tenantFromClaims({}, { tenantClaim: 'toString' })).toBeNull();
  });
});

describe('identityFromClaims', () => {
  it('builds the identity a server function sees', () => {
    const claims = { sub: 'ann', roles: ['editor'], tenant_id: 't1' };
    const toggles = ['beta'];
    const identity = identityFromClaims(claims, { grants: { '*': ['user'] }, featureToggles: toggles });
    expect(identity).toEqual({ claims, userRoles: ['editor', 'user'], tenantId: 't1', featureToggles: ['beta'] });
    // A copy: a function that changes its toggles cannot change them for the next caller.
    identity.featureToggles.push('x');
    expect(toggles).toEqual(['beta']);
  });
});
