import { z } from 'zod';

/**
 * Schemas for one configuration value. Each accepts what an environment
 * variable or URL gives (a string) as well as what YAML gives (numbers,
 * booleans, lists), and carries the accepted form in words for the error
 * message, because zod's own messages do not say which variable was wrong.
 */
export interface ValueSchema<T> {
  schema: z.ZodType<T>;
  expected: string;
  /** For structured values: what exactly is wrong (which entry, which key), added to the error message. */
  explain?: (error: z.ZodError) => string;
}

const integerText = z
  .string()
  .trim()
  .regex(/^[+-]?\d+$/)
  .transform(Number);

export function integer(min: number, max: number, what = 'an integer'): ValueSchema<number> {
  return {
    schema: z.union([z.number(), integerText]).pipe(z.number().int().min(min).max(max)),
    expected: `${what} ${min}-${max}`,
  };
}

export function decimal(min: number, max: number): ValueSchema<number> {
  const text = z
    .string()
    .trim()
    .regex(/^[+-]?(\d+(\.\d*)?|\.\d+)$/)
    .transform(Number);
  return {
    schema: z.union([z.number(), text]).pipe(z.number().min(min).max(max)),
    expected: `a number ${min}-${max}`,
  };
}

export function text(what = 'a non-empty string'): ValueSchema<string> {
  return {
    // YAML turns `password: 12345` into a number; the user meant the text.
    schema: z.union([z.string(), z.number().transform(String)]).pipe(z.string().trim().min(1)),
    expected: what,
  };
}

/**
 * A secret is taken as given (no trimming): spaces may be part of a password.
 * `minBytes`: a key that must be long enough to resist guessing (counted in UTF-8 bytes).
 */
export function secret(options: { minBytes?: number } = {}): ValueSchema<string> {
  const minBytes = options.minBytes ?? 1;
  return {
    schema: z
      .union([z.string(), z.number().transform(String)])
      .pipe(z.string().refine((value) => Buffer.byteLength(value, 'utf8') >= minBytes)),
    expected:
      minBytes > 1
        ? `a secret of at least ${minBytes} bytes (for example: openssl rand -base64 48)`
        : 'a non-empty string',
  };
}

export function oneOf<const T extends readonly [string, ...string[]]>(values: T): ValueSchema<T[number]> {
  return {
    schema: z.string().trim().toLowerCase().pipe(z.enum(values)),
    expected: `one of ${values.join(', ')}`,
  };
}

const TRUE_WORDS = ['true', '1', 'yes', 'on'];
const FALSE_WORDS = ['false', '0', 'no', 'off'];

export function boolean(): ValueSchema<boolean> {
  const words = z
    .string()
    .trim()
    .toLowerCase()
    .refine((word) => TRUE_WORDS.includes(word) || FALSE_WORDS.includes(word))
    .transform((word) => TRUE_WORDS.includes(word));
  return { schema: z.union([z.boolean(), words]), expected: 'true or false' };
}

const origin = z
  .string()
  .trim()
  .refine((value) => {
    if (value === '*') return true;
    try {
      const url = new URL(value);
      return (
        (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value.replace(/\/$/, '')
      );
    } catch {
      return false;
    }
  })
  .transform((value) => value.replace(/\/$/, ''));

export function originList(): ValueSchema<string[]> {
  const fromText = z.string().transform((value) =>
    value
      .split(',')
      .map((part) => part.trim())
      .filter((part) => part.length > 0),
  );
  return {
    schema: z.union([z.array(z.string()), fromText]).pipe(z.array(origin)),
    expected: 'a comma-separated list of origins such as https://app.example.com, or *',
  };
}

/** A comma-separated list (environment) or a YAML list of non-empty strings. */
function listOf<T>(item: z.ZodType<T, string>): z.ZodType<T[]> {
  const fromText = z.string().transform((value) =>
    value
      .split(',')
      .map((part) => part.trim())
      .filter((part) => part.length > 0),
  );
  return z.union([z.array(z.string()), fromText]).pipe(z.array(item));
}

/**
 * `host:port` or `redis://host:port`, as text; credentials, a database and
 * TLS come from the other redis keys, the same for every node of a cluster.
 */
const clusterNode = z
  .string()
  .trim()
  .transform((value, ctx) => {
    const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `redis://${value}`;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'not host:port' });
      return z.NEVER;
    }
    const plain =
      parsed.protocol === 'redis:' &&
      parsed.username === '' &&
      parsed.password === '' &&
      parsed.port !== '' &&
      parsed.pathname.replace(/^\/$/, '') === '' &&
      parsed.search === '';
    if (!plain) {
      ctx.addIssue({ code: 'custom', message: 'not host:port' });
      return z.NEVER;
    }
    return { host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(parsed.port) };
  });

export function clusterNodeList(): ValueSchema<{ host: string; port: number }[]> {
  return {
    schema: listOf(clusterNode).refine((nodes) => nodes.length > 0),
    expected:
      'a comma-separated list of Redis Cluster nodes as host:port or redis://host:port (password, user and TLS come from REDIS_PASSWORD, REDIS_USERNAME and REDIS_TLS)',
  };
}

export function roleList<const T extends readonly [string, ...string[]]>(roles: T): ValueSchema<T[number][]> {
  return {
    schema: listOf(z.string().trim().toLowerCase().pipe(z.enum(roles))),
    expected: `a comma-separated list of roles (${roles.join(', ')})`,
  };
}

/** Label or taint key prefixes such as `kubernetes.io/`; each must end with `/` or `.`, or be a whole key. */
export function prefixList(): ValueSchema<string[]> {
  return {
    schema: listOf(
      z
        .string()
        .trim()
        .regex(/^[a-z0-9]([a-z0-9.-]*[a-z0-9./])?$/i),
    ),
    expected: 'a comma-separated list of label key prefixes such as kubernetes.io/,k8s.io/',
  };
}

/**
 * `group=role` pairs (environment: comma-separated) or a YAML mapping of
 * group to role: how an identity provider's groups claim becomes a role.
 */
export function roleMap<const T extends readonly [string, ...string[]]>(
  roles: T,
): ValueSchema<Record<string, T[number]>> {
  const role = z.string().trim().toLowerCase().pipe(z.enum(roles));
  const fromText = z.string().transform((value, ctx) => {
    const map: Record<string, string> = {};
    for (const pair of value.split(',').map((part) => part.trim())) {
      if (pair === '') continue;
      const at = pair.lastIndexOf('=');
      if (at <= 0) {
        ctx.addIssue({ code: 'custom', message: `${JSON.stringify(pair)} is not group=role` });
        return z.NEVER;
      }
      map[pair.slice(0, at).trim()] = pair.slice(at + 1);
    }
    return map;
  });
  return {
    schema: z.union([z.record(z.string(), z.string()), fromText]).pipe(z.record(z.string().min(1), role)),
    expected: `group=role pairs separated by commas (roles: ${roles.join(', ')})`,
  };
}

/** An http(s) URL. */
export function httpUrl(what = 'an http(s) URL'): ValueSchema<string> {
  return {
    schema: z
      .string()
      .trim()
      .refine((value) => {
        try {
          return ['http:', 'https:'].includes(new URL(value).protocol);
        } catch {
          return false;
        }
      }),
    expected: what,
  };
}
