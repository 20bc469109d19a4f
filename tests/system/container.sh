# Sourced by tests/system/nspawn.sh and deb.sh: finding the PID 1 of the
# container that systemd-nspawn (started in the background, its PID in
# $ns_pid) boots, and telling whether it is still there ($leader: that
# PID 1, once found).
#
# The container's PID 1 is the process that is PID 1 in a pid namespace
# other than ours and runs systemd: systemd-nspawn's child (or grandchild,
# while an intermediate child of nspawn's is still there).  Nothing else
# will do: the other processes under nspawn are the container's services
# and helpers (mount, systemd-machine-id-setup, ...), some gone within
# milliseconds, and an nsenter that raced into one of those left $leader
# pointing at a PID that no longer existed.
is_pid1() {
	local nspid comm
	nspid=$(sed -n 's/^NSpid:[[:space:]]*//p' "/proc/$1/status" 2>/dev/null) &&
	    comm=$(cat "/proc/$1/comm" 2>/dev/null) || return 1
	case "$nspid" in *[[:space:]]1) ;; *) return 1;; esac
	[ "$comm" = systemd ] &&
	    [ "$(readlink "/proc/$1/ns/pid")" != "$(readlink /proc/self/ns/pid)" ]
}
container_pid1() {
	local child pid
	for child in $(pgrep -P "$ns_pid"); do
		for pid in "$child" $(pgrep -P "$child"); do
			is_pid1 "$pid" && { echo "$pid"; return 0; }
		done
	done
	return 1
}
container_alive() {
	[ -n "$ns_pid" ] && [ -n "$leader" ] && kill -0 "$ns_pid" 2>/dev/null &&
	    is_pid1 "$leader"
}
