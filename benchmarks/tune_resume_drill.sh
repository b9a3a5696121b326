#!/bin/bash
# Kill a ranker sweep (SIGKILL to its whole process group) once one trial has finished, then resume it;
# prints each trial's reports and result.json checksum before and after, so a re-run trial shows.
cd "$(dirname "$0")/.."
OUT=$(mktemp -d)
SETS="--set name=ranker-resume-drill --set num_samples=4 --set fixed.max_steps=90 --set scheduler.type=fifo --set winner.alias=none"
ROOT=~/.shopray/tune/ranker-resume-drill
rm -rf $ROOT
t0=$(date +%s)
setsid nice -n 10 .venv/bin/shopray tune tuning/ranker-finetune.yaml $SETS > $OUT/kr1.out 2> $OUT/kr1.err &
PID=$!
echo "started pid $PID at $t0"
while true; do
  sleep 5
  run=$(ls -d $ROOT/run-* 2>/dev/null | tail -1)
  [ -z "$run" ] && continue
  done_trials=0
  for f in $run/ranker_trial_*/result.json; do [ -f "$f" ] && [ $(wc -l < $f) -ge 3 ] && done_trials=$((done_trials+1)); done
  if [ "$done_trials" -ge 1 ]; then
    state=$(ls -t $run/experiment_state-*.json | head -1)
    sleep 12   # let Tune write the experiment state after the completion
    break
  fi
done
echo "killing process group $PID at $(( $(date +%s) - t0 )) s; finished trials: $done_trials"
for d in $run/ranker_trial_*; do echo "BEFORE $(basename $d | cut -c1-25) reports=$(wc -l < $d/result.json 2>/dev/null || echo 0) md5=$(md5sum < $d/result.json 2>/dev/null | cut -c1-8)"; done
kill -KILL -- -$PID
sleep 3
echo "left over processes of that group:"; ps -eo pid,pgid,cmd | awk -v g=$PID '$2==g' | cut -c1-120
t1=$(date +%s)
nice -n 10 .venv/bin/shopray tune tuning/ranker-finetune.yaml $SETS --resume > $OUT/kr2.out 2> $OUT/kr2.err
echo "resume rc $? took $(( $(date +%s) - t1 )) s"
for d in $run/ranker_trial_*; do echo "AFTER $(basename $d | cut -c1-25) reports=$(wc -l < $d/result.json) md5=$(md5sum < $d/result.json | cut -c1-8) iters=$(python3 -c "import json,sys; print([json.loads(l)['training_iteration'] for l in open('$d/result.json')])")"; done
cat $run/sessions.jsonl
