#!/usr/bin/env bash
# The baseline: what an SRE would write without a runner. One psql per tenant database, the
# migration in one transaction (-1), stop at the first error. Credentials come from PGPASSFILE.
#   psql-loop.sh <file.sql> <tenants.txt: "host port database user" per line>
set -euo pipefail
sql="$1"
list="$2"
while read -r host port db user; do
  psql -X -q -v ON_ERROR_STOP=1 -1 -f "$sql" "host=$host port=$port dbname=$db user=$user" >/dev/null
done < "$list"
