/**
 * Where the console is, in the URL's fragment (`#/providers/github-01`): the gateway serves one
 * page at `/console`, and the fragment never reaches it.
 */
import { useEffect, useState } from 'react';

export type Route =
  | { readonly page: 'providers' }
  | { readonly page: 'new-provider' }
  | { readonly page: 'provider'; readonly id: string }
  | { readonly page: 'edit-provider'; readonly id: string }
  | { readonly page: 'connection'; readonly providerId: string; readonly connectionId: string }
  | { readonly page: 'keys' }
  | { readonly page: 'webhooks' };

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const [first, id, sub, connectionId] = parts;
  if (first === 'keys') return { page: 'keys' };
  if (first === 'webhooks') return { page: 'webhooks' };
  if (first === 'providers' && id === 'new') return { page: 'new-provider' };
  if (first === 'providers' && id !== undefined) {
    if (sub === 'edit') return { page: 'edit-provider', id };
    if (sub === 'connections' && connectionId !== undefined)
      return { page: 'connection', providerId: id, connectionId };
    return { page: 'provider', id };
  }
  return { page: 'providers' };
}

export function hrefOf(route: Route): string {
  const e = encodeURIComponent;
  switch (route.page) {
    case 'providers':
      return '#/providers';
    case 'new-provider':
      return '#/providers/new';
    case 'provider':
      return `#/providers/${e(route.id)}`;
    case 'edit-provider':
      return `#/providers/${e(route.id)}/edit`;
    case 'connection':
      return `#/providers/${e(route.providerId)}/connections/${e(route.connectionId)}`;
    case 'keys':
      return '#/keys';
    case 'webhooks':
      return '#/webhooks';
  }
}

export function navigate(route: Route): void {
  window.location.hash = hrefOf(route);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
