import { DEV_USERS, devUser, switchDevUser } from './dev-user';

/** Picks the dev identity of this tab: open a second window as another user to watch live updates. */
export function UserSwitcher() {
  return (
    <div className="row user">
      <label htmlFor="dev-user">Signed in as</label>
      <select id="dev-user" value={devUser() ?? ''} onChange={(e) => switchDevUser(e.target.value || null)}>
        {DEV_USERS.map((user) => (
          <option key={user} value={user}>
            {user}
          </option>
        ))}
        <option value="">anonymous</option>
      </select>
      <span className="muted">
        a dev identity, sent as the <code>x-favn-dev-identity</code> header by this tab
      </span>
    </div>
  );
}
