"""One job machinery for the training wing: training runs, generation jobs and reward-model scoring.

- models.py: the abstract job row (status, worker, pid, heartbeat, progress, log tail, error, times).
- lifecycle.py: every status change of a job, each a conditional UPDATE: claim, start, progress,
  cancel, finish, requeue.
- workers.py: which worker holds a job and whether it is still alive; killing an orphaned pipeline.
- recovery.py: jobs whose worker was lost go back to the queue (a beat sweep).
- executors.py: where a pipeline process runs, behind one small interface; the local process
  (forked by the warm launcher of pipeline_process.py) is the first executor.
- stream.py: following a pipeline's JSON-lines output into batched flushes.
- outcome.py: what a job's execution ended with; queue.py: enqueuing a job's task by its name.

Imports go one way: training.pipelines < jobs < training < loop. Nothing here imports training or loop.
"""
