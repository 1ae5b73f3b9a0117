import type { LiveStatus } from '@favn/vite-plugin-server-fns/react';

const LABELS: Record<LiveStatus, string> = {
  live: 'Live',
  connecting: 'Connecting…',
  reconnecting: 'Reconnecting…',
  off: 'Not live',
};

const HINTS: Record<LiveStatus, string> = {
  live: 'The host pushes each new result after a write',
  connecting: 'Opening the push stream',
  reconnecting: 'The push stream was lost; retrying (the data may be stale)',
  off: 'Answered once; press Refresh for a new answer',
};

/** Where a `useQuery` stands: its `live` field. */
export function LiveBadge({ status }: { status: LiveStatus }) {
  return (
    <span className={`badge badge-${status}`} title={HINTS[status]}>
      {LABELS[status]}
    </span>
  );
}
