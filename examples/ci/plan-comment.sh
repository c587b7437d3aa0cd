#!/usr/bin/env bash
# Runs `infra plan --detailed-exitcode` and writes a Markdown comment for a
# pull request: what apply would change, or that nothing would. Exit codes
# follow the plan's: 0 no changes, 2 changes (both are a successful review),
# 1 an error (an unreachable host, a refused change). Needs SSH to the hosts
# and the inventory's secrets in the environment. Set INFRA to the binary.
set -uo pipefail

infra=${INFRA:-infra}
inventory=${1:?usage: plan-comment.sh INVENTORY [COMMENT_FILE]}
comment=${2:-plan-comment.md}

plan=$("$infra" plan --detailed-exitcode --no-progress --color never -i "$inventory" 2>plan-stderr.txt)
code=$?
{
  echo "### \`infra plan\` of \`$inventory\`"
  case $code in
    0) echo "No changes: every host matches the inventory." ;;
    2) echo "Apply would change:" ;;
    *) echo "**The plan failed** (exit $code):" ;;
  esac
  echo
  echo '```'
  [ -n "$plan" ] && echo "$plan"
  [ "$code" -eq 1 ] && cat plan-stderr.txt
  echo '```'
} > "$comment"
exit "$code"
