#!/usr/bin/env bash
# Writes fresh secrets for deploy/compose into ./secrets (mode 600, never committed) and
# prints the first bearer tokens of the gateway, the evaluator and the operator once.
# Existing files are kept.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
mkdir -p secrets
chmod 700 secrets
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }
write() {  # name, content
  [[ -e "secrets/$1" ]] && return 0
  (umask 077 && printf '%s\n' "$2" > "secrets/$1")
}
write pii_key "$(random)"
write postgres_password "$(random)"
write ingest_catalog_password "$(random)"
write redis_password "$(random)"
write minio_user wavepod
write minio_password "$(random)"
write grafana_admin_password "$(random)"
# MLflow's users (libs/wavepod/registry/access.py): its admin, and one per service plus a
# read-only operator (a person signs in to MLflow's UI with secrets/operator_mlflow_password).
write mlflow_admin_password "$(random)"
write mlflow_secret_key "$(random)"
mlflow_users=(trainer evaluator inference gateway operator)
for user in "${mlflow_users[@]}"; do write "${user}_mlflow_password" "$(random)"; done
write s3_credentials "$(printf '[default]\naws_access_key_id = wavepod\naws_secret_access_key = %s' "$(cat secrets/minio_password)")"
sha256() { python3 -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.read().strip().encode()).hexdigest())'; }
if [[ ! -e secrets/gateway_tokens ]]; then
  token="$(random)"
  write gateway_tokens "$(printf '%s' "$token" | sha256) admin admin,predict,feedback"
  echo "gateway token (role admin,predict,feedback; stored only as its sha256): $token"
fi
if [[ ! -e secrets/evaluator_tokens ]]; then  # promotion, rollback, retraining
  token="$(random)"
  write evaluator_tokens "$(printf '%s' "$token" | sha256) admin admin,evaluate"
  echo "evaluator token (role admin,evaluate; stored only as its sha256): $token"
fi
# Services calling services: each caller presents its own token; the internal services
# (ingest, feature, trainer, inference) keep only the hashes, one principal per caller,
# with the roles service-roles gives it. An operator's token (role admin: run sources,
# materialize, train, publish) is printed once.
callers=() lines=""
while read -r caller roles; do
  [[ -z "$caller" || "$caller" == \#* ]] && continue
  callers+=("$caller")
  write "${caller}_token" "$(random)"
  lines+="$(sha256 < "secrets/${caller}_token") ${caller} ${roles}"$'\n'
done < service-roles
if [[ ! -e secrets/service_tokens ]]; then
  token="$(random)"
  write service_tokens "${lines}$(printf '%s' "$token" | sha256) operator admin"
  echo "operator token for ingest, feature, trainer and inference (role admin; stored only as its sha256): $token"
fi
# Compose bind-mounts secret files as they are: each belongs to the uid that reads it
# (wavepod's images, MLflow's included, run as 65532, Grafana as 472; PostgreSQL and MinIO
# read theirs as root, postgres_password included). Without root here, fall back to
# readable files in the private directory.
own() {  # uid, files...
  local uid="$1"
  shift
  for f in "$@"; do
    chown "$uid:$uid" "secrets/$f" 2>/dev/null && chmod 400 "secrets/$f" || chmod 644 "secrets/$f"
  done
}
own 65532 pii_key ingest_catalog_password redis_password gateway_tokens evaluator_tokens s3_credentials \
  service_tokens "${callers[@]/%/_token}" trainer_mlflow_password evaluator_mlflow_password \
  inference_mlflow_password gateway_mlflow_password postgres_password mlflow_admin_password \
  mlflow_secret_key operator_mlflow_password
own 472 grafana_admin_password
