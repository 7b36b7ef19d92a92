#!/usr/bin/env bash
# Start or stop a private PulseAudio daemon with a null sink ("vsink"), so that sounddevice sees a
# real audio device on a machine without a sound card (tests, CI). Idempotent.
#
#   eval "$(scripts/pulse-null-sink.sh start)"   # exports XDG_RUNTIME_DIR and EPISTEMIC_PULSE_DIR
#   scripts/pulse-null-sink.sh stop
#   scripts/pulse-null-sink.sh status  # exit 0 when the daemon answers
#
# Needs (Debian): libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins alsa-utils.
# The runtime folder is $EPISTEMIC_PULSE_DIR (default /tmp/epistemic-pulse-$UID); clients must use
# it as XDG_RUNTIME_DIR. Audio played to "vsink" can be captured from "vsink.monitor".
set -euo pipefail

RUNTIME_DIR="${EPISTEMIC_PULSE_DIR:-/tmp/epistemic-pulse-$(id -u)}"
PID_FILE="$RUNTIME_DIR/daemon.pid"
LOG_FILE="$RUNTIME_DIR/daemon.log"
SINK_RATE="${EPISTEMIC_PULSE_RATE:-16000}"

print_env() {
    echo "export XDG_RUNTIME_DIR=$RUNTIME_DIR"
    echo "export EPISTEMIC_PULSE_DIR=$RUNTIME_DIR"
}

answers() {
    XDG_RUNTIME_DIR="$RUNTIME_DIR" pactl info >/dev/null 2>&1
}

running_pid() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE")"
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

start() {
    command -v pulseaudio >/dev/null || { echo "pulseaudio is not installed (apt-get install pulseaudio pulseaudio-utils)" >&2; exit 1; }
    mkdir -p "$RUNTIME_DIR"
    chmod 700 "$RUNTIME_DIR"
    if running_pid >/dev/null && answers; then
        print_env
        return 0
    fi
    XDG_RUNTIME_DIR="$RUNTIME_DIR" HOME="$RUNTIME_DIR" setsid pulseaudio --daemonize=no \
        --exit-idle-time=-1 --disallow-exit -n --use-pid-file=no --log-target=stderr \
        --load=module-native-protocol-unix \
        --load="module-null-sink sink_name=vsink rate=$SINK_RATE channels=1" \
        </dev/null >"$LOG_FILE" 2>&1 &
    echo $! >"$PID_FILE"
    for _ in $(seq 1 100); do
        if answers; then
            XDG_RUNTIME_DIR="$RUNTIME_DIR" pactl set-default-sink vsink >/dev/null 2>&1 || true
            XDG_RUNTIME_DIR="$RUNTIME_DIR" pactl set-default-source vsink.monitor >/dev/null 2>&1 || true
            print_env
            return 0
        fi
        sleep 0.1
    done
    echo "PulseAudio did not start; see $LOG_FILE" >&2
    exit 1
}

stop() {
    local pid
    if pid="$(running_pid)"; then
        kill "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$PID_FILE"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) answers ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
