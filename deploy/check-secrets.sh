#!/bin/sh
# Refuse to start the stack with missing, placeholder or weak secrets.
#
#   check-secrets.sh            check every secret docker-compose.yaml uses (DEFAULT_SECRETS)
#   check-secrets.sh VAR ...    check only the named environment variables
#
# Exits 0 when all are fine; otherwise prints one line per offending variable, naming it and
# the reason, and exits 1 (2 on a usage error). Values are never printed.
#
# docker-compose.yaml runs it twice: in the one-shot `check-secrets` service, which PostgreSQL
# waits for (the postgres image bakes the passwords into its data volume on first start, so
# placeholders must be refused before that, not after), and first thing in `airflow-init`.
# POSIX sh on purpose: it runs in the postgres image as well as the Airflow one.

# Keep in step with .env.example; tests/deploy/test_compose.py checks that they agree.
DEFAULT_SECRETS="POSTGRES_PASSWORD AIRFLOW_DB_PASSWORD MLFLOW_DB_PASSWORD REDIS_PASSWORD
AIRFLOW_FERNET_KEY AIRFLOW_API_SECRET_KEY AIRFLOW_JWT_SECRET AIRFLOW_ADMIN_PASSWORD
MLFLOW_ADMIN_PASSWORD MLFLOW_SECRET_KEY"

# These go unescaped into the password part of a URL (SQLAlchemy, Celery broker), where
# '@', ':', '/', '%', '#' and friends silently change the meaning: allow unreserved characters only.
URL_SECRETS="POSTGRES_PASSWORD AIRFLOW_DB_PASSWORD MLFLOW_DB_PASSWORD REDIS_PASSWORD"

MIN_LENGTH=12
PLACEHOLDER_PREFIX="change-me"

if [ "$#" -eq 0 ]; then
    # Word splitting of the list is intended.
    # shellcheck disable=SC2086
    set -- $DEFAULT_SECRETS
fi

problems=""
for name in "$@"; do
    # The name goes through eval below: accept shell identifiers only.
    case $name in
        "" | [!A-Za-z_]* | *[!A-Za-z0-9_]*)
            echo "check-secrets: '$name' is not a variable name" >&2
            exit 2
            ;;
    esac
    eval "value=\${$name-}"

    reason=""
    if [ -z "$value" ]; then
        reason="is empty or not set"
    else
        case $value in
            "$PLACEHOLDER_PREFIX"*) reason="still holds the .env.example placeholder (starts with '$PLACEHOLDER_PREFIX')" ;;
        esac
    fi
    if [ -z "$reason" ] && [ "${#value}" -lt "$MIN_LENGTH" ]; then
        reason="is too short (${#value} characters; at least $MIN_LENGTH)"
    fi
    if [ -z "$reason" ]; then
        case " $URL_SECRETS " in
            *" $name "*)
                case $value in
                    *[!A-Za-z0-9._~-]*) reason="has characters that break a connection URL (use letters, digits and . _ ~ -)" ;;
                esac
                ;;
        esac
    fi
    if [ -z "$reason" ] && [ "$name" = "AIRFLOW_FERNET_KEY" ]; then
        # A Fernet key is 32 bytes in URL-safe base64: 43 characters and one '=' of padding.
        case $value in
            *[!A-Za-z0-9_=-]*) reason="is not a Fernet key (URL-safe base64 expected)" ;;
            *) [ "${#value}" -eq 44 ] && [ "${value%=}" != "$value" ] \
                || reason="is not a Fernet key (44 characters of URL-safe base64 ending in '=')" ;;
        esac
    fi

    if [ -n "$reason" ]; then
        problems="$problems
  - $name $reason"
    fi
done

if [ -n "$problems" ]; then
    cat >&2 <<EOF
check-secrets: refusing to start; fix these variables in .env (see .env.example):$problems

Generate values with:
  openssl rand -hex 24                 # any password or secret key
  python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())'
                                       # AIRFLOW_FERNET_KEY
EOF
    exit 1
fi

echo "check-secrets: $# secrets set, none a placeholder, none shorter than $MIN_LENGTH characters"
