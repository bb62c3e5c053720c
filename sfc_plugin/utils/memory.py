"""Peak memory of the running process, for the benchmarks."""
import platform
import resource


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB.

    Linux: ``VmHWM`` of /proc/self/status, which starts afresh in a new program (``ru_maxrss`` carries the
    parent's peak over fork and exec); elsewhere ``ru_maxrss`` (KiB on Linux, bytes on macOS).
    """
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) / 2 ** 10
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2 ** 20 if platform.system() == 'Darwin' else peak / 2 ** 10
