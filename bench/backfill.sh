#!/usr/bin/env bash
# imgflow backfill's own cost against LocalStack (no worker): N small objects
# (default 1000) listed and enqueued unthrottled, then listed and checked with
# --only-missing --dry-run (one manifest GET each). Ratios are against a bare
# `aws s3api list-objects-v2` of the same prefix in the same run.
#
#   AWS_ENDPOINT_URL=http://127.0.0.1:4566 bench/backfill.sh [N]
#
# Needs target/debug/imgflow (or IMGFLOW_BIN) and the test tools' aws
# (scripts/test-tools.sh). Fresh buckets and queue per run; deleted after.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
n=${1:-1000}
bin=${IMGFLOW_BIN:-$root/target/debug/imgflow}
awsbin=$root/.test-tools/venv/bin/aws
export AWS_ENDPOINT_URL=${AWS_ENDPOINT_URL:-http://127.0.0.1:4566}
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
aws() { "$awsbin" --endpoint-url "$AWS_ENDPOINT_URL" "$@"; }
id=bf$(date +%s)
export IMGFLOW_INBOX=$id-inbox IMGFLOW_OUTBOX=$id-outbox IMGFLOW_QUEUE=$id-jobs
"$bin" setup >/dev/null
# As if the objects were there before imgflow: no notification.
aws s3api put-bucket-notification-configuration --bucket "$IMGFLOW_INBOX" \
    --notification-configuration '{}'
aws sqs purge-queue --queue-url "$(aws sqs get-queue-url --queue-name "$IMGFLOW_QUEUE" --query QueueUrl --output text)"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for i in $(seq -w 1 "$n"); do cp "$root/tests/fixtures/rocket.jpg" "$dir/$i.jpg"; done
aws s3 cp --recursive --quiet "$dir" "s3://$IMGFLOW_INBOX/old/"

t() { local s=$(date +%s.%N); "$@" >/dev/null; echo "$(date +%s.%N) - $s" | bc; }
list=$(t "$awsbin" --endpoint-url "$AWS_ENDPOINT_URL" s3api list-objects-v2 --bucket "$IMGFLOW_INBOX" --prefix old/)
enqueue=$(t "$bin" backfill "s3://$IMGFLOW_INBOX/old/" --rate 100000)
check=$(t "$bin" backfill "s3://$IMGFLOW_INBOX/old/" --rate 100000 --only-missing --dry-run)
queued=$(aws sqs get-queue-attributes --queue-url "$(aws sqs get-queue-url --queue-name "$IMGFLOW_QUEUE" --query QueueUrl --output text)" \
    --attribute-names ApproximateNumberOfMessages --query Attributes.ApproximateNumberOfMessages --output text)
printf 'objects %s, messages on the queue %s\n' "$n" "$queued"
printf 'aws s3api list-objects-v2 (reference): %.2f s\n' "$list"
printf 'backfill (list + SendMessageBatch):     %.2f s  %.0f msg/s  %.1fx the listing\n' "$enqueue" "$(echo "$n / $enqueue" | bc -l)" "$(echo "$enqueue / $list" | bc -l)"
printf 'backfill --only-missing --dry-run:      %.2f s  %.0f obj/s  %.1fx the listing\n' "$check" "$(echo "$n / $check" | bc -l)" "$(echo "$check / $list" | bc -l)"
aws s3 rb --force "s3://$IMGFLOW_INBOX" >/dev/null
aws s3 rb --force "s3://$IMGFLOW_OUTBOX" >/dev/null
for q in "$IMGFLOW_QUEUE" "$IMGFLOW_QUEUE-dlq"; do
    aws sqs delete-queue --queue-url "$(aws sqs get-queue-url --queue-name "$q" --query QueueUrl --output text)"
done
