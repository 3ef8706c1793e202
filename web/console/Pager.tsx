/** Keyset pagination: the API gives a cursor to the next page; the pages seen so far are remembered to go back. */
import { useState } from 'react';

export interface Cursors {
  readonly after: string | null;
  readonly pageNumber: number;
  next(cursor: string): void;
  previous(): void;
  reset(): void;
}

export function useCursors(): Cursors {
  const [stack, setStack] = useState<(string | null)[]>([null]);
  return {
    after: stack[stack.length - 1] ?? null,
    pageNumber: stack.length,
    next: (cursor) => setStack((s) => [...s, cursor]),
    previous: () => setStack((s) => (s.length > 1 ? s.slice(0, -1) : s)),
    reset: () => setStack([null]),
  };
}

export function Pager({
  cursors,
  nextCursor,
  label,
}: {
  readonly cursors: Cursors;
  readonly nextCursor: string | null;
  readonly label: string;
}) {
  return (
    <nav className="pager" aria-label={`${label} pages`}>
      <button type="button" className="secondary" disabled={cursors.pageNumber === 1} onClick={cursors.previous}>
        Previous page
      </button>
      <span>Page {cursors.pageNumber}</span>
      <button
        type="button"
        className="secondary"
        disabled={nextCursor === null}
        onClick={() => nextCursor && cursors.next(nextCursor)}
      >
        Next page
      </button>
    </nav>
  );
}
