/* Device profiles of simulated clients: speed, availability, communication cost (see
 * include/fedhpc/async.h). Everything is a pure function of the seed and the client id. */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/async.h"
#include "fedhpc/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The width to print of a bad field: up to its line end, at most 40 characters. */
static int field_width(const char *s)
{
    const size_t n = strcspn(s, "\r\n");
    return (int)(n < 40 ? n : 40);
}

/* One speed a line ("speed", or "client,speed" with the clients in order; an optional header;
 * '#' comments and blank lines skipped); exactly C of them. */
static fh_status speeds_csv(sys_profile *p, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return fh_error_set(FH_EINPUT, "[system] speeds: cannot open %s", path);
    char line[512];
    int32_t i = 0, ln = 0;
    fh_status st = FH_OK;
    while (st == FH_OK && fgets(line, sizeof line, f)) {
        ln++;
        char *s = line + strspn(line, " \t"), *comma = strchr(s, ','), *num = comma ? comma + 1 : s, *e1 = s, *e2;
        if (*s == '#' || *s == '\n' || *s == '\r' || !*s) continue;
        const long id = comma ? strtol(s, &e1, 10) : i; /* client,speed: the client must be the next one */
        if (comma && e1 == s && i == 0 && ln == 1) continue; /* a header line */
        const double v = strtod(num, &e2);
        e2 += strspn(e2, " \r\n\t");
        if (comma && e1 == s)
            st = fh_error_set(FH_EINPUT, "%s:%d: expected client,speed, got '%.*s'", path, ln, field_width(s), s);
        else if (id != i)
            st = fh_error_set(FH_EINPUT, "%s:%d: expected client %d, got %ld", path, ln, i, id);
        else if (e2 == num || *e2 || !(v > 0) || !isfinite(v))
            st = fh_error_set(FH_EINPUT, "%s:%d: expected a positive speed, got '%.*s'", path, ln, field_width(num), num);
        else if (i >= p->C)
            st = fh_error_set(FH_EINPUT, "%s:%d: more speeds than the %d clients", path, ln, p->C);
        else
            p->speed[i++] = v;
    }
    fclose(f);
    if (st == FH_OK && i < p->C)
        st = fh_error_set(FH_EINPUT, "%s: %d speeds for %d clients", path, i, p->C);
    return st;
}

fh_status sys_profile_init(sys_profile *p, const config_system *sys, uint64_t seed, int32_t C)
{
    memset(p, 0, sizeof *p);
    p->C = C;
    p->on = sys->on;
    p->off = sys->off;
    p->step_time = sys->step_time;
    p->comm_per_byte = sys->comm_per_byte;
    p->speed = malloc((size_t)(C > 0 ? C : 1) * sizeof *p->speed);
    p->phase = malloc((size_t)(C > 0 ? C : 1) * sizeof *p->phase);
    if (!p->speed || !p->phase) {
        sys_profile_free(p);
        return fh_error_set(FH_ENOMEM, "out of memory for %d device profiles", C);
    }
    const double T = p->on + p->off;
    for (int32_t c = 0; c < C; c++) {
        rng_t r = rng_stream(seed, (uint64_t)c, 0, RNG_SYSTEM);
        p->speed[c] = exp(sys->sigma * rng_normal(&r));
        rng_t q = rng_stream(seed, (uint64_t)c, 1, RNG_SYSTEM);
        p->phase[c] = T > 0 ? rng_uniform(&q) * T : 0;
    }
    if (sys->speeds[0]) {
        fh_status st = speeds_csv(p, sys->speeds);
        if (st != FH_OK) {
            sys_profile_free(p);
            return st;
        }
    }
    return FH_OK;
}

void sys_profile_free(sys_profile *p)
{
    free(p->speed);
    free(p->phase);
    memset(p, 0, sizeof *p);
}

static int always_on(const sys_profile *p) { return !(p->on > 0 && p->off > 0); }

/* Cumulative on-time of client c up to time t (from an origin where a period starts). */
static double cum_on(const sys_profile *p, int32_t c, double t)
{
    const double T = p->on + p->off, u = t + p->phase[c];
    const double k = floor(u / T), r = u - k * T;
    return k * p->on + (r < p->on ? r : p->on);
}

double sys_on_time(const sys_profile *p, int32_t c, double t0, double t1)
{
    if (t1 <= t0) return 0;
    if (always_on(p)) return t1 - t0;
    return cum_on(p, c, t1) - cum_on(p, c, t0);
}

double sys_advance(const sys_profile *p, int32_t c, double t0, double work)
{
    if (work <= 0) return t0;
    if (always_on(p)) return t0 + work;
    const double T = p->on + p->off, G = cum_on(p, c, t0) + work;
    double k = floor(G / p->on), rem = G - k * p->on;
    double u = rem > 0 ? k * T + rem : (k - 1) * T + p->on; /* ends exactly at a period's end */
    double t = u - p->phase[c];
    return t > t0 ? t : t0;
}

double sys_job_work(const sys_profile *p, int32_t c, int64_t steps, int64_t P)
{
    return p->comm_per_byte * 8.0 * (double)P + (double)steps * p->step_time / p->speed[c];
}

int64_t sys_steps_before(const sys_profile *p, int32_t c, double t0, double t1, int64_t P, int64_t max_steps)
{
    double avail = sys_on_time(p, c, t0, t1) - p->comm_per_byte * 8.0 * (double)P;
    if (avail <= 0) return 0;
    double k = floor(avail * p->speed[c] / p->step_time * (1 + 1e-12));
    if (k >= (double)max_steps) return max_steps;
    return (int64_t)k;
}

int64_t sys_full_steps(int64_t n, int32_t epochs, int32_t batch)
{
    if (n <= 0) return 0;
    const int64_t B = batch > 0 && batch < n ? batch : n;
    return (int64_t)epochs * ((n + B - 1) / B);
}
