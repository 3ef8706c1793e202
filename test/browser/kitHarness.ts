/**
 * What test/clientKit.test.ts loads into a page of another origin than the gateway's (bundled by
 * Vite, like an app would): the consent kit as the package exports it, and Apollo Client.
 */
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import * as kit from '../../src/client/index.js';

declare global {
  interface Window {
    harness: typeof harness;
  }
}

const harness = { kit, ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql };
window.harness = harness;
