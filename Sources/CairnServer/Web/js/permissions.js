// What the caller may do, from the server (GET /api/cairn/v1/permissions; the rule is the
// server's AccessControl, this file only compares levels): pages show an edit, delete, rename,
// note, alias or save button only when the caller's level allows it, so a read-only user sees
// no button that would fail. With accounts off everything is allowed.
import {cairn} from './api.js';

const rank = {DENY: 0, NO_PERMISSIONS: 0, READ: 1, USE: 2, EDIT: 3, MANAGE: 4};

/** True when `level` (READ, EDIT, …) allows what `needed` asks for. */
export function allows(level, needed) { return (rank[level] || 0) >= (rank[needed] || 0) && (rank[needed] || 0) > 0; }

/**
 * The caller's levels on these experiments and registered models:
 * {admin, canCreate, experiment(id, needed), model(name, needed)} — the last two true when allowed.
 * A failed look-up allows nothing but reading (the buttons stay hidden, the page still works).
 */
export async function permissions({experiments = [], models = []} = {}) {
  let reply;
  try {
    const ids = [...new Set(experiments)].slice(0, 1000);
    const names = [...new Set(models)].slice(0, 1000);
    reply = await cairn('permissions', {experiment_ids: ids, registered_model_names: names});
  } catch {
    reply = {auth: true, admin: false, can_create: false, experiments: {}, registered_models: {}};
  }
  const open = reply.auth === false;
  const mayAll = (table, keys, needed) => open || (keys.length > 0 && keys.every((k) => allows(table[k], needed)));
  return {
    auth: !open,
    admin: reply.admin === true,
    canCreate: reply.can_create === true,
    /** `needed` on the experiment `id` (or on every one of a list). */
    experiment: (id, needed) => mayAll(reply.experiments || {}, [].concat(id), needed),
    model: (name, needed) => mayAll(reply.registered_models || {}, [].concat(name), needed),
  };
}
