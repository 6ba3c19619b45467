#!/usr/bin/env bash
# Lint: every tracked C++ file must be formatted as .clang-format says (clang-format 14,
# Debian's), and every tracked JS file must pass ESLint (eslint.config.mjs) and be formatted
# as Prettier says (.prettierrc.json). Fails naming the files; `bash tools/lint.sh --fix`
# rewrites them in place instead.
set -euo pipefail
cd "$(dirname "$0")/.."
fix=0
[ "${1:-}" = "--fix" ] && fix=1

mapfile -t cpp < <(git ls-files '*.cpp' '*.hpp' '*.h' '*.cc')
mapfile -t js < <(git ls-files '*.js' '*.mjs' '*.cjs')
bin=node_modules/.bin
status=0

if ((fix)); then
  clang-format -i "${cpp[@]}"
  # ESLint's fixes first, then Prettier has the last word on layout.
  "$bin/eslint" --fix "${js[@]}" || status=1
  "$bin/prettier" --log-level warn --write "${js[@]}"
  exit $status
fi

bad=()
for f in "${cpp[@]}"; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if ((${#bad[@]})); then
  echo "lint: ${#bad[@]} C++ file(s) differ from .clang-format (bash tools/lint.sh --fix):"
  printf '  %s\n' "${bad[@]}"
  status=1
fi
if ! out=$("$bin/prettier" --list-different "${js[@]}"); then
  echo "lint: JS file(s) differ from Prettier's format (bash tools/lint.sh --fix):"
  printf '  %s\n' $out
  status=1
fi
"$bin/eslint" --max-warnings 0 "${js[@]}" || status=1
((status)) || echo "lint: ${#cpp[@]} C++ and ${#js[@]} JS files clean"
exit $status
