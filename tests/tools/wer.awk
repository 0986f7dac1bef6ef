# wer.awk - word error rate of hypothesis lines against reference lines, line by line.
# usage: awk -f wer.awk REF HYP   (line i of HYP transcribes line i of REF)
# Words: lower case, every character other than a-z, 0-9 and the apostrophe is a space.
# Prints one line per differing pair ("N: ref | hyp (E edits)"), then
# "WER P% (E edits / W reference words, L lines)"; exits 1 when the line counts differ.
function norm(s) { s = tolower(s); gsub(/[^a-z0-9']+/, " ", s); return s }
function edits(a, na, b, nb,    i, j, d, prev, cur, t) {
    for (j = 0; j <= nb; j++) prev[j] = j
    for (i = 1; i <= na; i++) {
        cur[0] = i
        for (j = 1; j <= nb; j++) {
            d = prev[j - 1] + (a[i] != b[j])
            if (prev[j] + 1 < d) d = prev[j] + 1
            if (cur[j - 1] + 1 < d) d = cur[j - 1] + 1
            cur[j] = d
        }
        for (j = 0; j <= nb; j++) prev[j] = cur[j]
    }
    return prev[nb]
}
FNR == NR { ref[FNR] = $0; nref = FNR; next }
{ hyp[FNR] = $0; nhyp = FNR }
END {
    if (nref != nhyp) { printf "wer: %d reference lines, %d hypothesis lines\n", nref, nhyp; exit 1 }
    for (l = 1; l <= nref; l++) {
        na = split(norm(ref[l]), a, " "); nb = split(norm(hyp[l]), b, " ")
        e = edits(a, na, b, nb); E += e; W += na
        if (e) printf "%d: %s | %s (%d edits)\n", l, ref[l], hyp[l], e
    }
    printf "WER %.1f%% (%d edits / %d reference words, %d lines)\n", W ? 100 * E / W : 0, E, W, nref
}
