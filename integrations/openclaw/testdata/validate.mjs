// Validates frames against the JSON Schemas that an openclaw package ships,
// with the ajv that openclaw itself depends on.
//
//   node validate.mjs /path/to/openclaw/openclaw.mjs < checks.jsonl
//
// Each input line is {"name": "...", "schema": "HelloOkSchema", "value": ...}
// where schema names an export of openclaw's dist/gateway/protocol, or
// "Health" (hello-ok's snapshot.health, which the health method returns).
// Prints one JSON line per check: {"name", "ok", "errors"}.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { readFileSync } from "node:fs";

const pkg = dirname(process.argv[2]);
const require = createRequire(join(pkg, "package.json"));
const AjvModule = require("ajv");
const Ajv = AjvModule.default ?? AjvModule;
const protocol = await import(pathToFileURL(join(pkg, "dist/gateway/protocol/index.js")).href);

const schemas = {
  ...protocol,
  Health: protocol.HelloOkSchema.properties.snapshot.properties.health,
};
const ajv = new Ajv({ allErrors: true, strict: false });
const compiled = new Map();

for (const line of readFileSync(0, "utf8").split("\n")) {
  if (!line.trim()) continue;
  const { name, schema, value } = JSON.parse(line);
  const s = schemas[schema];
  if (!s || typeof s !== "object") {
    console.log(JSON.stringify({ name, ok: false, errors: [`openclaw exports no schema ${schema}`] }));
    continue;
  }
  if (!compiled.has(schema)) compiled.set(schema, ajv.compile(s));
  const validate = compiled.get(schema);
  const ok = validate(value);
  console.log(JSON.stringify({ name, ok, errors: ok ? [] : validate.errors.map((e) => `${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`) }));
}
