#!/usr/bin/env bash
# Kaldi-style option parsing: for every variable `foo` (or `foo_bar`) already set by the calling
# script, `--foo value`, `--foo=value` (and `--foo-bar value`) set it. `--help` prints the variables.
# Source it after setting the defaults: `. utils/parse_options.sh`.

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      echo "Usage: $0 [options]"; echo "Options (current values):"
      for _v in ${_recipe_options:-}; do printf '  --%-16s %s\n' "$_v" "${!_v}"; done
      exit 0 ;;
    --*=*)
      _name="${1%%=*}"; _name="${_name#--}"; _value="${1#*=}"; shift ;;
    --*)
      _name="${1#--}"
      if [ $# -lt 2 ]; then echo "$0: option --$_name needs a value" >&2; exit 1; fi
      _value="$2"; shift 2 ;;
    *) break ;;
  esac
  _name="${_name//-/_}"
  if ! declare -p "$_name" >/dev/null 2>&1; then
    echo "$0: unknown option --$_name (see $0 --help)" >&2; exit 1
  fi
  printf -v "$_name" '%s' "$_value"
done
