// A value the screens follow: setting it tells every follower.
export interface Signal<T> {
  get(): T;
  set(value: T): void;
  follow(f: (value: T) => void): () => void;
}

export function signal<T>(value: T): Signal<T> {
  const followers = new Set<(value: T) => void>();
  return {
    get: () => value,
    set(next: T) {
      value = next;
      for (const f of followers) f(next);
    },
    follow(f) {
      followers.add(f);
      return () => followers.delete(f);
    },
  };
}
