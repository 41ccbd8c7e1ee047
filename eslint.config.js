// Lint rules that keep the architecture honest: one-way dependencies between the top-level
// folders, imports only through each folder's index.ts, no floating promises, type-only imports.
import tseslint from "typescript-eslint";
import importX from "eslint-plugin-import-x";

const layers = ["bus", "actors", "gateway", "agent-worker"];
// What each folder may import (ARCHITECTURE.md, "Folders").
const allowed = {
  bus: [],
  actors: ["bus"],
  gateway: ["bus", "actors"],
  "agent-worker": ["bus", "actors"],
};

function zonesFor(layer) {
  return layers
    .filter((other) => other !== layer && !allowed[layer].includes(other))
    .map((other) => ({
      target: `./${layer}`,
      from: `./${other}`,
      message: `${layer}/ may not import ${other}/ (see ARCHITECTURE.md)`,
    }));
}

export default tseslint.config(
  { ignores: ["node_modules/**", ".sidekick/**", "dist/**", "coverage/**", "bench/results/**"] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { "import-x": importX },
    settings: { "import-x/resolver": { node: true } },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-empty": ["error", { allowEmptyCatch: false }],
      "import-x/no-cycle": "error",
      "import-x/no-restricted-paths": ["error", { zones: layers.flatMap(zonesFor) }],
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: [
                ...layers.flatMap((l) => [`**/${l}/*/**`, `**/${l}/*.ts`, `!**/${l}/index.ts`]),
                // tests/gateway/… and the like are test helpers, not the product folders.
                "!**/tests/**",
              ],
              message: "Import another top-level folder only through its index.ts.",
            },
          ],
        },
      ],
    },
  },
  {
    files: ["**/*.js", "**/*.mjs"],
    ...tseslint.configs.disableTypeChecked,
  },
);
