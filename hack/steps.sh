# Sourced by the measuring scripts (e2e/bench/run.sh, e2e/reliability/run.sh): each step of a
# run notes, in $out/loadavg.txt, how busy the machine was in the second before it started.
# Other work skews absolute numbers; ratios less so, when both sides alternate under the same load.

busy() { # percent of all cores busy over one second (/proc/stat: all but idle and iowait)
	local a b
	read -r -a a < <(head -1 /proc/stat)
	sleep 1
	read -r -a b < <(head -1 /proc/stat)
	local t=0 i=0
	for j in 1 2 3 4 5 6 7 8; do t=$((t + b[j] - a[j])); done
	i=$((b[4] - a[4] + b[5] - a[5]))
	echo $(((t - i) * 100 / (t > 0 ? t : 1)))
}

# step "name: what it does" prints a heading and notes the machine's load under name.
step() {
	printf '\n==> %s\n' "$*"
	printf '%s: machine %s%% busy in the second before\n' "${*%%:*}" "$(busy)" >>"$out/loadavg.txt"
}
