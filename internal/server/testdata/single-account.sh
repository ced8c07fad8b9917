set -e
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
E="aws --endpoint-url http://127.0.0.1:9301 lambda"
/tmp/lambdad-old serve --data-dir data --listen 127.0.0.1:9301 > server.log 2>&1 &
sleep 1.5
for fn in keep other; do cat > lambda_function.py <<EOF
import os
def lambda_handler(event, context):
    return {"function": "$fn", "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"]}
EOF
rm -f $fn.zip; python3 -m zipfile -c $fn.zip lambda_function.py
$E create-function --function-name $fn --runtime python3.12 --handler lambda_function.lambda_handler --role arn:aws:iam::123456789012:role/r --zip-file fileb://$fn.zip --publish >/dev/null; done
$E put-function-concurrency --function-name keep --reserved-concurrent-executions 300 >/dev/null
$E create-alias --function-name keep --name live --function-version 1 >/dev/null
$E put-function-event-invoke-config --function-name keep --maximum-retry-attempts 0 >/dev/null
$E put-provisioned-concurrency-config --function-name other --qualifier 1 --provisioned-concurrent-executions 2 >/dev/null
$E invoke --function-name keep:live out.json >/dev/null
cat > lambda_function.py <<'EOF'
import time
def lambda_handler(event, context):
    if event.get("fail"):
        raise Exception("failed on purpose")
    time.sleep(event.get("sleep", 0))
    print("ran", event)
    return {"function": "async", "event": event}
EOF
rm -f async.zip; python3 -m zipfile -c async.zip lambda_function.py
$E create-function --function-name async --runtime python3.12 --handler lambda_function.lambda_handler --role arn:aws:iam::123456789012:role/r --zip-file fileb://async.zip --timeout 30 >/dev/null
$E put-function-event-invoke-config --function-name async --maximum-retry-attempts 0 >/dev/null
$E invoke --function-name async --invocation-type Event --payload '{"fail":true}' o.json >/dev/null
sleep 3
$E invoke --function-name async --invocation-type Event --payload '{"sleep":3,"pending":1}' o.json >/dev/null
sleep 1
kill -9 $(cat data/lambdad.pid)
sleep 0.3
pkill -9 -f 'python3.*bootstrap' || true
