"""The synthetic prompt every benchmark engine decodes: the same LCG as bench_gen.c's
prompt, so ours and the peers see identical token ids."""


def prompt_ids(n):
    x, out = 42, []
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out.append(1000 + x % 20000)
    return out
