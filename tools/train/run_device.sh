#!/bin/sh
# Train the target and the draft on the lent GPU machine and pack them for the trip back.
# usage (from the repository root, on the device): tools/train/run_device.sh DATA_DIR OUT_DIR
# DATA_DIR holds train.txt, valid.txt, tokenizer*.json; OUT_DIR receives models.tar.part-*
# (the run tool brings back at most 8 files of 16 MiB: the bf16 weights travel as 15 MiB parts;
# join them with `cat models.tar.part-* | tar xf -`).
set -eu
data=$1 out=$2
work=$(mktemp -d)
export PYTHONUNBUFFERED=1
python3 tools/train/train.py --size target --data "$data" --out "$work/target" --eval-every 100 --max-minutes 7
python3 tools/train/train.py --size draft --data "$data" --out "$work/draft" --eval-every 100 --max-minutes 2
rm -f "$work"/*/generation_config.json
(cd "$work" && tar cf - target draft) | split -b 15M - "$out/models.tar.part-"
ls -l "$out"
