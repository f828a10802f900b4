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

/** A secret is taken as given (no trimming): spaces may be part of a password. */
export function secret(): ValueSchema<string> {
  return {
    schema: z.union([z.string(), z.number().transform(String)]).pipe(z.string().min(1)),
    expected: 'a non-empty string',
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
