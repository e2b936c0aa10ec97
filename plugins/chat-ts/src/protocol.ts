// What a chat client may send, checked as strictly as the Rust plugin's serde derive (internally tagged by `type`,
// snake_case names, unknown fields refused, u64 numbers), with serde_json's wording for what is wrong.

export type Command =
  | { type: "login"; uid: string }
  | { type: "join"; room: string }
  | { type: "leave"; room: string }
  | { type: "say"; room: string; text: string }
  | { type: "dm"; to: string; text: string }
  | { type: "online"; uid: string }
  | { type: "whoami" }
  | { type: "remind"; after_ms: number; text: string }
  | { type: "ticks"; every_ms: number }
  | { type: "stop_ticks" };

/** Each command's fields and their kind: text, or a u64 number. */
const FIELDS: Record<Command["type"], Record<string, "string" | "u64">> = {
  login: { uid: "string" },
  join: { room: "string" },
  leave: { room: "string" },
  say: { room: "string", text: "string" },
  dm: { to: "string", text: "string" },
  online: { uid: "string" },
  whoami: {},
  remind: { after_ms: "u64", text: "string" },
  ticks: { every_ms: "u64" },
  stop_ticks: {},
};

const VARIANTS = Object.keys(FIELDS).map((v) => `\`${v}\``).join(", ");

/** serde's name for what a JSON value is, in its "invalid type" errors. */
function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a sequence";
  if (typeof value === "string") return `string ${JSON.stringify(value)}`;
  if (typeof value === "number") return Number.isInteger(value) ? `integer \`${value}\`` : `floating point \`${value}\``;
  if (typeof value === "boolean") return `boolean \`${value}\``;
  return "a map";
}

/** The command in `text`, or what is wrong with it. */
export function parseCommand(text: string): Command | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return "expected value";
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return `invalid type: ${describe(value)}, expected internally tagged enum Command`;
  }
  const object = value as Record<string, unknown>;
  if (!("type" in object)) return "missing field `type`";
  const type = object.type;
  if (typeof type !== "string" || !Object.hasOwn(FIELDS, type)) {
    return typeof type === "string"
      ? `unknown variant \`${type}\`, expected one of ${VARIANTS}`
      : `invalid type: ${describe(type)}, expected variant identifier`;
  }
  const fields = FIELDS[type as Command["type"]];
  for (const key of Object.keys(object)) {
    if (key !== "type" && !Object.hasOwn(fields, key)) {
      const expected = Object.keys(fields).map((f) => `\`${f}\``).join(", ");
      return expected ? `unknown field \`${key}\`, expected one of ${expected}` : `unknown field \`${key}\`, there are no fields`;
    }
  }
  for (const [key, kind] of Object.entries(fields)) {
    if (!(key in object)) return `missing field \`${key}\``;
    const field = object[key];
    if (kind === "string" && typeof field !== "string") return `invalid type: ${describe(field)}, expected a string`;
    if (kind === "u64" && !(typeof field === "number" && Number.isInteger(field) && field >= 0 && field <= Number.MAX_SAFE_INTEGER)) {
      return `invalid type: ${describe(field)}, expected u64`;
    }
  }
  return object as unknown as Command;
}
