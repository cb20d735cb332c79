/*
 * standin: a small stand-in for a Triton model server, speaking the KServe v2 HTTP protocol.
 *
 * Real Triton or vLLM images are tens of gigabytes and need GPUs; this answers the same health,
 * metadata, inference and metrics endpoints so that Berth's controller, gateway and tests run
 * against real containers.
 *
 * Environment:
 *   BERTH_PORT / PORT        port to listen on (default 8000)
 *   STANDIN_MODEL            model name (default $BERTH_MODEL, else "standin")
 *   STANDIN_VERSION          version reported (set by the image; default $BERTH_MODEL_VERSION)
 *   STANDIN_LOAD_DELAY       seconds before /v2/health/ready answers 200 (default 0)
 *   STANDIN_FAIL             "never-ready": ready never answers 200; "exit": see STANDIN_EXIT_AFTER
 *   STANDIN_EXIT_AFTER       exit with status 1 after this many seconds
 *   STANDIN_GPU_UTIL         utilisation reported per GPU, 0..1 (default 0.35)
 *   NVIDIA_VISIBLE_DEVICES   GPUs reported in /metrics (default none)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *model, *version, *replica, *fail_mode, *gpus;
static double load_delay, exit_after = -1, gpu_util = 0.35;
static double started;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}
static unsigned long requests_ok, requests_failed, inferences, infer_duration_us;

static const char *env(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

static int ready(void) {
    if (fail_mode && strcmp(fail_mode, "never-ready") == 0) return 0;
    return now() - started >= load_delay;
}

static void respond(int fd, int status, const char *type, const char *body, int keep_alive) {
    const char *reason = status == 200 ? "OK" : status == 404 ? "Not Found" : status == 400 ? "Bad Request"
                       : status == 501 ? "Not Implemented" : "Service Unavailable";
    char head[512];
    size_t len = strlen(body);
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: %s\r\n\r\n",
                     status, reason, type, len, keep_alive ? "keep-alive" : "close");
    if (write(fd, head, n) < 0 || (len && write(fd, body, len) < 0)) return;
}

/* Prometheus text: the metric names Triton exposes, one GPU series per visible device. */
/* Appends to out, never past cap (output that does not fit is cut). */
#define APPEND(...)                                                         \
    do {                                                                    \
        if (n < cap) {                                                      \
            int w = snprintf(out + n, cap - n, __VA_ARGS__);                \
            n = w < 0 ? cap : (size_t)w >= cap - n ? cap - 1 : n + (size_t)w; \
        }                                                                   \
    } while (0)

static void metrics(char *out, size_t cap) {
    size_t n = 0;
    APPEND(
                  "# HELP nv_inference_request_success Number of successful inference requests\n"
                  "# TYPE nv_inference_request_success counter\n"
                  "nv_inference_request_success{model=\"%s\",version=\"%s\"} %lu\n"
                  "# HELP nv_inference_request_failure Number of failed inference requests\n"
                  "# TYPE nv_inference_request_failure counter\n"
                  "nv_inference_request_failure{model=\"%s\",version=\"%s\"} %lu\n"
                  "# HELP nv_inference_count Number of inferences performed\n"
                  "# TYPE nv_inference_count counter\n"
                  "nv_inference_count{model=\"%s\",version=\"%s\"} %lu\n"
                  "# HELP nv_inference_request_duration_us Cumulative inference request duration in microseconds\n"
                  "# TYPE nv_inference_request_duration_us counter\n"
                  "nv_inference_request_duration_us{model=\"%s\",version=\"%s\"} %lu\n"
                  "# HELP nv_gpu_utilization GPU utilization rate [0.0 - 1.0)\n# TYPE nv_gpu_utilization gauge\n",
                  model, version, __atomic_load_n(&requests_ok, __ATOMIC_RELAXED), model, version,
                  __atomic_load_n(&requests_failed, __ATOMIC_RELAXED), model, version,
                  __atomic_load_n(&inferences, __ATOMIC_RELAXED), model, version,
                  __atomic_load_n(&infer_duration_us, __ATOMIC_RELAXED));
    char list[256];
    snprintf(list, sizeof list, "%s", gpus);
    for (int pass = 0; pass < 3; pass++) {
        if (pass == 1) APPEND("# HELP nv_gpu_memory_used_bytes GPU used memory (bytes)\n# TYPE nv_gpu_memory_used_bytes gauge\n");
        if (pass == 2) APPEND("# HELP nv_gpu_memory_total_bytes GPU total memory (bytes)\n# TYPE nv_gpu_memory_total_bytes gauge\n");
        char copy[256], *save = NULL;
        snprintf(copy, sizeof copy, "%s", list);
        for (char *g = strtok_r(copy, ",", &save); g; g = strtok_r(NULL, ",", &save)) {
            if (strcmp(g, "void") == 0 || strcmp(g, "none") == 0) continue;
            if (pass == 0) APPEND("nv_gpu_utilization{gpu_uuid=\"GPU-%s\"} %.3f\n", g, gpu_util);
            if (pass == 1) APPEND("nv_gpu_memory_used_bytes{gpu_uuid=\"GPU-%s\"} %.0f\n", g, 80e9 * gpu_util);
            if (pass == 2) APPEND("nv_gpu_memory_total_bytes{gpu_uuid=\"GPU-%s\"} %.0f\n", g, 80e9);
        }
    }
}

static void handle(int fd, const char *method, const char *path, const char *body, int keep_alive) {
    char buf[8192];
    char prefix[256];
    snprintf(prefix, sizeof prefix, "/v2/models/%s", model);
    size_t plen = strlen(prefix);
    int is_get = strcmp(method, "GET") == 0, is_post = strcmp(method, "POST") == 0;

    if (is_get && strcmp(path, "/v2/health/live") == 0) return respond(fd, 200, "text/plain", "", keep_alive);
    if (is_get && strcmp(path, "/v2/health/ready") == 0) return respond(fd, ready() ? 200 : 503, "text/plain", "", keep_alive);
    if (is_get && (strcmp(path, "/healthz") == 0 || strcmp(path, "/health") == 0)) return respond(fd, ready() ? 200 : 503, "text/plain", "", keep_alive);
    if (is_get && strcmp(path, "/v2") == 0) {
        snprintf(buf, sizeof buf, "{\"name\":\"standin\",\"version\":\"%s\",\"extensions\":[]}", version);
        return respond(fd, 200, "application/json", buf, keep_alive);
    }
    if (is_get && strcmp(path, "/metrics") == 0) {
        char out[16384];
        metrics(out, sizeof out);
        return respond(fd, 200, "text/plain; version=0.0.4", out, keep_alive);
    }
    if (strncmp(path, prefix, plen) == 0) {
        const char *rest = path + plen;
        if (strncmp(rest, "/versions/", 10) == 0) rest = strchr(rest + 10, '/') ? strchr(rest + 10, '/') : "";
        if (is_get && strcmp(rest, "/ready") == 0) return respond(fd, ready() ? 200 : 503, "text/plain", "", keep_alive);
        if (is_get && *rest == 0) {
            snprintf(buf, sizeof buf,
                     "{\"name\":\"%s\",\"versions\":[\"%s\"],\"platform\":\"standin\","
                     "\"inputs\":[{\"name\":\"text_input\",\"datatype\":\"BYTES\",\"shape\":[1]}],"
                     "\"outputs\":[{\"name\":\"text_output\",\"datatype\":\"BYTES\",\"shape\":[1]}]}",
                     model, version);
            return respond(fd, 200, "application/json", buf, keep_alive);
        }
        if (is_post && strcmp(rest, "/infer") == 0) {
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            if (!ready()) {
                __atomic_add_fetch(&requests_failed, 1, __ATOMIC_RELAXED);
                return respond(fd, 503, "application/json", "{\"error\":\"model is not ready\"}", keep_alive);
            }
            /* A deterministic toy answer: the length of the request body, and who answered. */
            snprintf(buf, sizeof buf,
                     "{\"model_name\":\"%s\",\"model_version\":\"%s\",\"outputs\":[{\"name\":\"text_output\","
                     "\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"%s@%s replica %s read %zu bytes\"]}]}",
                     model, version, model, version, replica, strlen(body));
            respond(fd, 200, "application/json", buf, keep_alive);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            __atomic_add_fetch(&requests_ok, 1, __ATOMIC_RELAXED);
            __atomic_add_fetch(&inferences, 1, __ATOMIC_RELAXED);
            __atomic_add_fetch(&infer_duration_us, (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000, __ATOMIC_RELAXED);
            return;
        }
    }
    snprintf(buf, sizeof buf, "{\"error\":\"no route for %s %s\"}", method, path);
    respond(fd, 404, "application/json", buf, keep_alive);
}

static void *serve(void *arg) {
    int fd = (int)(long)arg;
    char req[65536];
    size_t used = 0;
    for (;;) {
        char *end;
        while (!(end = memmem(req, used, "\r\n\r\n", 4))) {
            if (used == sizeof req) goto done;
            ssize_t n = read(fd, req + used, sizeof req - used);
            if (n <= 0) goto done;
            used += n;
        }
        size_t head_len = end + 4 - req;
        char method[16] = "", path[1024] = "", proto[16] = "";
        sscanf(req, "%15s %1023s %15s", method, path, proto);
        char *q = strchr(path, '?');
        if (q) *q = 0;
        size_t content_length = 0;
        int keep_alive = strcmp(proto, "HTTP/1.1") == 0, bad = 0;
        for (char *line = strstr(req, "\r\n") + 2; line < end; line = strstr(line, "\r\n") + 2) {
            if (strncasecmp(line, "Content-Length:", 15) == 0) {
                const char *v = line + 15;
                while (*v == ' ') v++;
                char *stop;
                errno = 0;
                unsigned long n = strtoul(v, &stop, 10);
                if (*v < '0' || *v > '9' || errno == ERANGE || stop == v) bad = 1;
                content_length = n;
            }
            if (strncasecmp(line, "Transfer-Encoding:", 18) == 0) {
                respond(fd, 501, "application/json", "{\"error\":\"chunked requests are not supported; send Content-Length\"}", 0);
                goto done;
            }
            if (strncasecmp(line, "Connection:", 11) == 0) {
                const char *v = line + 11;
                while (*v == ' ') v++;
                if (strncasecmp(v, "close", 5) == 0) keep_alive = 0;
                if (strncasecmp(v, "keep-alive", 10) == 0) keep_alive = 1;
            }
        }
        if (bad || content_length > sizeof req - 1 - head_len) {
            respond(fd, 400, "application/json", "{\"error\":\"request too large\"}", 0);
            goto done;
        }
        while (used < head_len + content_length) {
            ssize_t n = read(fd, req + used, head_len + content_length - used);
            if (n <= 0) goto done;
            used += n;
        }
        char saved = req[head_len + content_length];
        req[head_len + content_length] = 0;
        handle(fd, method, path, req + head_len, keep_alive);
        req[head_len + content_length] = saved;
        memmove(req, req + head_len + content_length, used - head_len - content_length);
        used -= head_len + content_length;
        if (!keep_alive) break;
    }
done:
    close(fd);
    return NULL;
}

static void on_term(int sig) {
    (void)sig;
    _exit(0);
}

/* STANDIN_EXIT_AFTER: exit as a crashing server would. A handler is needed: as PID 1 of a
   container, default-action signals are ignored. */
static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "standin: exiting as STANDIN_EXIT_AFTER asks\n";
    if (write(2, msg, sizeof msg - 1) < 0) _exit(1);
    _exit(1);
}

int main(void) {
    model = env("STANDIN_MODEL", env("BERTH_MODEL", "standin"));
    version = env("STANDIN_VERSION", env("BERTH_MODEL_VERSION", "1"));
    replica = env("BERTH_REPLICA", "0");
    fail_mode = getenv("STANDIN_FAIL");
    gpus = env("NVIDIA_VISIBLE_DEVICES", "");
    load_delay = atof(env("STANDIN_LOAD_DELAY", "0"));
    gpu_util = atof(env("STANDIN_GPU_UTIL", "0.35"));
    if (getenv("STANDIN_EXIT_AFTER")) exit_after = atof(getenv("STANDIN_EXIT_AFTER"));
    int port = atoi(env("BERTH_PORT", env("PORT", "8000")));
    started = now();
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    if (exit_after >= 0) alarm((unsigned)(exit_after < 1 ? 1 : exit_after));

    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY)};
    if (bind(s, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(s, 512) < 0) {
        fprintf(stderr, "standin: cannot listen on port %d: %s\n", port, strerror(errno));
        return 1;
    }
    fprintf(stderr, "standin: %s@%s replica %s listening on %d (ready in %.0fs%s)\n", model, version, replica, port, load_delay,
            fail_mode ? ", failure mode set" : "");
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) continue;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t t;
        if (pthread_create(&t, &attr, serve, (void *)(long)c) != 0) close(c);
    }
}
