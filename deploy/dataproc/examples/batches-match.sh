gcloud dataproc batches submit pyspark gs://my-bucket/metaclip/code/jobs/match.py \
    --batch=mc-cc-main-2024-10-match-b363713a-t1 \
    --region=us-central1 \
    --project=my-project \
    --version=2.3 \
    --service-account=metaclip@my-project.iam.gserviceaccount.com \
    '--archives=gs://my-bucket/metaclip/code/env.tar.gz#environment' \
    --files=gs://my-bucket/metaclip/data/lid.176.bin,gs://my-bucket/metaclip/data/metadata.json \
    --properties=spark.driver.maxResultSize=4g,spark.driver.memory=8g,spark.dynamicAllocation.enabled=true,spark.dynamicAllocation.maxExecutors=100,spark.excludeOnFailure.enabled=true,spark.executor.cores=4,spark.executor.heartbeatInterval=60s,spark.executor.memory=4g,spark.executor.memoryOverhead=4g,spark.locality.wait=0s,spark.network.timeout=600s,spark.pyspark.driver.python=./environment/bin/python,spark.pyspark.python=./environment/bin/python,spark.python.worker.reuse=true,spark.speculation=false,spark.stage.maxConsecutiveAttempts=8,spark.task.maxFailures=8 \
    -- \
    --input https://data.commoncrawl.org/crawl-data/CC-MAIN-2024-10/wat.paths.gz \
    --metadata gs://my-bucket/metaclip/data/metadata.json \
    --lid-model gs://my-bucket/metaclip/data/lid.176.bin \
    --output gs://my-bucket/metaclip/runs/crawl=CC-MAIN-2024-10 \
    --set balance.t=20000 \
    --set data_files=sparkfiles \
    --set input.cc_root=https://data.commoncrawl.org/ \
    --set input.max_failed_fraction=0.001 \
    --set input.label=CC-MAIN-2024-10
