/* batch.h - mlx-quant batch: one conversion per JSONL record. */
#ifndef MLX_QUANT_BATCH_H
#define MLX_QUANT_BATCH_H

/* The subcommand: argv[0] is "batch"; returns the exit status. */
int cmd_batch(int argc, char **argv);

#endif
