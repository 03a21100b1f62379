/* Tests of src/privacy: the RDP accountant of the sampled Gaussian mechanism.
 *
 * Reference values come from tests/unit/privacy_reference.py (re-run it to regenerate them;
 * needs python3-mpmath). They are independent of the C code: integer orders by the exact
 * binomial sum in mpmath at 50 digits, fractional orders by numerically integrating the
 * definition of A_alpha = E_{z~N(0,s^2)}[((1-q) + q exp((2z-1)/(2s^2)))^alpha] with
 * mpmath.quad at 50 digits (not the erfc series the C code uses), epsilon by the Balle et al.
 * 2020 conversion minimised over the Opacus orders in mpmath, and sigma for a target epsilon
 * by mpmath.findroot. The quadrature was checked against the exact sum at integer orders
 * (agreement 3e-51). The C code agrees with these to < 2e-9 relative in RDP and < 1e-11 in
 * epsilon; the tolerances below (1e-7 and 1e-6) leave room for libm differences.
 */
#include "tests.h"

#include "fedhpc/privacy.h"

#include <math.h>
#include <string.h>

/* RDP of one step: (q, sigma, alpha) -> RDP */
static const struct {
    double q, sigma, alpha, rdp;
} k_rdp_ref[] = {
    {0.01, 1.1, 2.0, 0.0001285100816051618},
    {0.01, 1.1, 32.0, 8.4694164336759256},
    {0.01, 1.1, 1.5, 0.000095545285718748299},
    {0.01, 1.1, 10.9, 0.001404899641481093},
    {0.1, 0.8, 1.1, 0.015238073389379314},
    {0.1, 0.8, 5.5, 1.4933699639334828},
    {0.5, 2.0, 3.3, 0.12356143241980287},
    {0.001, 4.0, 63.0, 0.0000020397757458466236},
    {0.05, 0.5, 2.7, 0.83150424501507037},
    {0.2, 1.0, 12.0, 4.244322473877345},
    {0.3, 0.7, 8.0, 6.7872980532817545},
    {0.02, 3.0, 1.4, 0.000032857524943809921},
};

/* epsilon of `steps` homogeneous steps, and the minimising order */
static const struct {
    double q, sigma;
    int64_t steps;
    double delta, eps, order;
} k_eps_ref[] = {
    {0.01, 1.1, 10000, 1e-05, 5.6319923686818018, 4.7},
    {0.004, 1.0, 15000, 1e-05, 2.96632814753096, 7.3},
    {0.1, 2.0, 500, 1e-06, 6.6789989689358381, 4.7},
    {0.02, 0.7, 1000, 1e-05, 10.221846987304589, 2.7},
    {0.256, 1.3, 60, 1e-05, 10.275076202416059, 2.9},
    {1.0, 5.0, 10, 1e-05, 2.8136532471298397, 7.9},
};

/* composition of (q, sigma, steps) = (0.01, 1.1, 3000), (0.05, 2.0, 200), (0.1, 0.8, 50) at
 * delta 1e-5 */
static const double k_het_eps = 9.9546523377763565, k_het_order = 2.7;

/* smallest sigma with eps(q, sigma, steps, delta) = target */
static const struct {
    double q;
    int64_t steps;
    double delta, target, sigma;
} k_sigma_ref[] = {
    {0.01, 10000, 1e-05, 3.0, 1.66185608934},
    {0.1, 100, 1e-05, 1.0, 4.27761139219},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int rel_close(double got, double want, double tol)
{
    return fabs(got - want) <= tol * fabs(want);
}

static void test_orders_are_opacus_defaults(void)
{
    CU_ASSERT_EQUAL(privacy_order(0), 1.1);
    CU_ASSERT_EQUAL(privacy_order(98), 1.0 + 99 / 10.0);
    CU_ASSERT_EQUAL(privacy_order(9), 2.0); /* integer orders inside the fractional range */
    CU_ASSERT_EQUAL(privacy_order(99), 12.0);
    CU_ASSERT_EQUAL(privacy_order(PRIVACY_NORDERS - 1), 63.0);
    CU_ASSERT(isnan(privacy_order(-1)));
    CU_ASSERT(isnan(privacy_order(PRIVACY_NORDERS)));
    for (int i = 1; i < PRIVACY_NORDERS; i++) CU_ASSERT(privacy_order(i) > privacy_order(i - 1));
}

static void test_rdp_single_steps(void)
{
    for (size_t i = 0; i < NELEM(k_rdp_ref); i++) {
        double r = privacy_rdp_sgm(k_rdp_ref[i].q, k_rdp_ref[i].sigma, k_rdp_ref[i].alpha);
        CU_ASSERT(rel_close(r, k_rdp_ref[i].rdp, 1e-7));
    }
}

static void test_epsilon_configs(void)
{
    for (size_t i = 0; i < NELEM(k_eps_ref); i++) {
        privacy_accountant a;
        privacy_accountant_init(&a);
        CU_ASSERT_EQUAL_FATAL(
            privacy_accountant_step(&a, k_eps_ref[i].q, k_eps_ref[i].sigma, k_eps_ref[i].steps),
            FH_OK);
        CU_ASSERT_EQUAL(a.steps, k_eps_ref[i].steps);
        double eps = -1, order = -1;
        CU_ASSERT_EQUAL(privacy_epsilon(&a, k_eps_ref[i].delta, &eps, &order), FH_OK);
        CU_ASSERT(rel_close(eps, k_eps_ref[i].eps, 1e-6));
        CU_ASSERT_DOUBLE_EQUAL(order, k_eps_ref[i].order, 1e-9);
    }
}

static void test_conversion_formula(void)
{
    /* one order by hand: 1 - (log 1e-5 + log 2) / 1 + log(1/2) */
    double o = 2.0, r = 1.0, eps, best;
    CU_ASSERT_EQUAL(privacy_rdp_to_epsilon(&o, &r, 1, 1e-5, &eps, &best), FH_OK);
    CU_ASSERT_DOUBLE_EQUAL(eps, 11.126631103850338, 1e-12);
    CU_ASSERT_EQUAL(best, 2.0);
    /* NaN entries are ignored; all NaN means no privacy (Opacus: inf, nan) */
    double os[3] = {2.0, 3.0, 4.0}, rs[3] = {NAN, 0.5, NAN};
    CU_ASSERT_EQUAL(privacy_rdp_to_epsilon(os, rs, 3, 1e-5, &eps, &best), FH_OK);
    CU_ASSERT_EQUAL(best, 3.0);
    CU_ASSERT(isfinite(eps));
    rs[1] = NAN;
    CU_ASSERT_EQUAL(privacy_rdp_to_epsilon(os, rs, 3, 1e-5, &eps, &best), FH_OK);
    CU_ASSERT(isinf(eps) && eps > 0);
    CU_ASSERT(isnan(best));
    /* bad input */
    CU_ASSERT_EQUAL(privacy_rdp_to_epsilon(&o, &r, 1, 0.0, &eps, NULL), FH_EINPUT);
    CU_ASSERT_EQUAL(privacy_rdp_to_epsilon(&o, &r, 0, 1e-5, &eps, NULL), FH_EINPUT);
    o = 1.0;
    CU_ASSERT_EQUAL(privacy_rdp_to_epsilon(&o, &r, 1, 1e-5, &eps, NULL), FH_EINPUT);
}

static void test_heterogeneous_composition(void)
{
    const struct {
        double q, sigma;
        int64_t steps;
    } parts[3] = {{0.01, 1.1, 3000}, {0.05, 2.0, 200}, {0.1, 0.8, 50}};
    privacy_accountant all, rev, sum, one;
    privacy_accountant_init(&all);
    privacy_accountant_init(&rev);
    privacy_accountant_init(&sum);
    for (int k = 0; k < 3; k++) {
        CU_ASSERT_EQUAL_FATAL(privacy_accountant_step(&all, parts[k].q, parts[k].sigma,
                                                      parts[k].steps), FH_OK);
        CU_ASSERT_EQUAL_FATAL(privacy_accountant_step(&rev, parts[2 - k].q, parts[2 - k].sigma,
                                                      parts[2 - k].steps), FH_OK);
        privacy_accountant_init(&one);
        CU_ASSERT_EQUAL_FATAL(privacy_accountant_step(&one, parts[k].q, parts[k].sigma,
                                                      parts[k].steps), FH_OK);
        privacy_accountant_merge(&sum, &one);
    }
    CU_ASSERT_EQUAL(all.steps, 3250);
    CU_ASSERT_EQUAL(sum.steps, 3250);
    for (int i = 0; i < PRIVACY_NORDERS; i++) {
        double want = 0;
        for (int k = 0; k < 3; k++)
            want += (double)parts[k].steps *
                    privacy_rdp_sgm(parts[k].q, parts[k].sigma, privacy_order(i));
        CU_ASSERT(rel_close(all.rdp[i], want, 1e-12));
        CU_ASSERT(rel_close(rev.rdp[i], want, 1e-12));
        CU_ASSERT(rel_close(sum.rdp[i], want, 1e-12));
    }
    /* steps recorded one at a time equal the same steps in one call */
    privacy_accountant a1, a2;
    privacy_accountant_init(&a1);
    privacy_accountant_init(&a2);
    for (int t = 0; t < 50; t++) privacy_accountant_step(&a1, 0.1, 0.8, 1);
    privacy_accountant_step(&a2, 0.1, 0.8, 50);
    for (int i = 0; i < PRIVACY_NORDERS; i++) CU_ASSERT(rel_close(a1.rdp[i], a2.rdp[i], 1e-12));

    double eps, order;
    CU_ASSERT_EQUAL(privacy_epsilon(&all, 1e-5, &eps, &order), FH_OK);
    CU_ASSERT(rel_close(eps, k_het_eps, 1e-6));
    CU_ASSERT_DOUBLE_EQUAL(order, k_het_order, 1e-9);
    /* the composition costs more than any part and less than the parts' epsilons added */
    double sum_parts = 0;
    for (int k = 0; k < 3; k++) {
        privacy_accountant_init(&one);
        privacy_accountant_step(&one, parts[k].q, parts[k].sigma, parts[k].steps);
        double e;
        privacy_epsilon(&one, 1e-5, &e, NULL);
        CU_ASSERT(e < eps);
        sum_parts += e;
    }
    CU_ASSERT(eps < sum_parts);
}

static void test_sigma_for_epsilon(void)
{
    for (size_t i = 0; i < NELEM(k_sigma_ref); i++) {
        double s = 0;
        CU_ASSERT_EQUAL_FATAL(privacy_sigma_for_epsilon(k_sigma_ref[i].q, k_sigma_ref[i].steps,
                                                        k_sigma_ref[i].delta,
                                                        k_sigma_ref[i].target, &s),
                              FH_OK);
        CU_ASSERT(rel_close(s, k_sigma_ref[i].sigma, 1e-6));
        /* round trip: the sigma meets the target, and only just */
        privacy_accountant a;
        privacy_accountant_init(&a);
        privacy_accountant_step(&a, k_sigma_ref[i].q, s, k_sigma_ref[i].steps);
        double eps;
        privacy_epsilon(&a, k_sigma_ref[i].delta, &eps, NULL);
        CU_ASSERT(eps <= k_sigma_ref[i].target);
        CU_ASSERT(rel_close(eps, k_sigma_ref[i].target, 1e-5));
    }
    /* round trip from the epsilon side */
    double s = 0;
    CU_ASSERT_EQUAL(privacy_sigma_for_epsilon(k_eps_ref[0].q, k_eps_ref[0].steps,
                                              k_eps_ref[0].delta, k_eps_ref[0].eps, &s),
                    FH_OK);
    CU_ASSERT(rel_close(s, k_eps_ref[0].sigma, 1e-5));
    /* no sampled data: no noise needed */
    CU_ASSERT_EQUAL(privacy_sigma_for_epsilon(0.0, 100, 1e-5, 1.0, &s), FH_OK);
    CU_ASSERT_EQUAL(s, 0.0);
    /* below the floor of the conversion (about 0.1 at delta 1e-5 with orders <= 63) */
    CU_ASSERT_EQUAL(privacy_sigma_for_epsilon(1.0, 10, 1e-5, 0.01, &s), FH_EINPUT);
    CU_ASSERT(strstr(fh_error_msg(), "out of reach") != NULL);
    CU_ASSERT_EQUAL(privacy_sigma_for_epsilon(0.1, 10, 1e-5, -1.0, &s), FH_EINPUT);
    CU_ASSERT_EQUAL(privacy_sigma_for_epsilon(0.1, 10, 2.0, 1.0, &s), FH_EINPUT);
    CU_ASSERT_EQUAL(privacy_sigma_for_epsilon(1.5, 10, 1e-5, 1.0, &s), FH_EINPUT);
}

static void test_edge_cases(void)
{
    /* q = 1: the plain Gaussian mechanism, alpha / (2 sigma^2) */
    for (int i = 0; i < PRIVACY_NORDERS; i += 10) {
        double al = privacy_order(i);
        CU_ASSERT(rel_close(privacy_rdp_sgm(1.0, 2.0, al), al / 8.0, 1e-15));
    }
    /* q = 0: nothing is spent, whatever sigma */
    CU_ASSERT_EQUAL(privacy_rdp_sgm(0.0, 1.0, 2.5), 0.0);
    CU_ASSERT_EQUAL(privacy_rdp_sgm(0.0, 0.0, 2.5), 0.0);
    privacy_accountant a;
    privacy_accountant_init(&a);
    double eps = -1, order = 0;
    CU_ASSERT_EQUAL(privacy_epsilon(&a, 1e-5, &eps, &order), FH_OK); /* fresh accountant */
    CU_ASSERT_EQUAL(eps, 0.0);
    CU_ASSERT_EQUAL(privacy_accountant_step(&a, 0.0, 1.0, 1000), FH_OK);
    CU_ASSERT_EQUAL(privacy_epsilon(&a, 1e-5, &eps, &order), FH_OK);
    CU_ASSERT_EQUAL(eps, 0.0);
    CU_ASSERT(isnan(order));
    /* sigma = 0: no privacy */
    CU_ASSERT(isinf(privacy_rdp_sgm(0.1, 0.0, 2.0)));
    CU_ASSERT(isinf(privacy_rdp_sgm(0.1, 0.0, 1.5)));
    CU_ASSERT_EQUAL(privacy_accountant_step(&a, 0.1, 0.0, 1), FH_OK);
    CU_ASSERT_EQUAL(privacy_epsilon(&a, 1e-5, &eps, NULL), FH_OK);
    CU_ASSERT(isinf(eps) && eps > 0);
    /* bad arguments: NaN from the pure function, FH_EINPUT (accountant unchanged) */
    CU_ASSERT(isnan(privacy_rdp_sgm(-0.1, 1.0, 2.0)));
    CU_ASSERT(isnan(privacy_rdp_sgm(0.1, -1.0, 2.0)));
    CU_ASSERT(isnan(privacy_rdp_sgm(0.1, 1.0, 1.0)));
    CU_ASSERT(isnan(privacy_rdp_sgm(NAN, 1.0, 2.0)));
    privacy_accountant_init(&a);
    privacy_accountant_step(&a, 0.1, 1.0, 5);
    privacy_accountant before = a;
    CU_ASSERT_EQUAL(privacy_accountant_step(&a, 1.5, 1.0, 1), FH_EINPUT);
    CU_ASSERT(strstr(fh_error_msg(), "sample rate") != NULL);
    CU_ASSERT_EQUAL(privacy_accountant_step(&a, 0.1, -1.0, 1), FH_EINPUT);
    CU_ASSERT_EQUAL(privacy_accountant_step(&a, 0.1, NAN, 1), FH_EINPUT);
    CU_ASSERT_EQUAL(privacy_accountant_step(&a, 0.1, 1.0, -1), FH_EINPUT);
    CU_ASSERT_EQUAL(memcmp(&a, &before, sizeof a), 0);
    CU_ASSERT_EQUAL(privacy_accountant_step(&a, 0.1, 1.0, 0), FH_OK); /* zero steps: no-op */
    CU_ASSERT_EQUAL(memcmp(&a, &before, sizeof a), 0);
    CU_ASSERT_EQUAL(privacy_epsilon(&a, 0.0, &eps, NULL), FH_EINPUT);
    CU_ASSERT_EQUAL(privacy_epsilon(&a, 1.0, &eps, NULL), FH_EINPUT);
}

static void test_stable_and_monotone(void)
{
    /* hard corners stay finite and non-negative at every order */
    const double qs[] = {1e-6, 0.001, 0.5, 0.6, 0.999}, ss[] = {0.3, 0.8, 1.0, 10.0, 100.0};
    for (size_t i = 0; i < NELEM(qs); i++)
        for (size_t j = 0; j < NELEM(ss); j++)
            for (int k = 0; k < PRIVACY_NORDERS; k++) {
                double r = privacy_rdp_sgm(qs[i], ss[j], privacy_order(k));
                CU_ASSERT(isfinite(r) && r >= 0.0);
                /* never above the unsampled Gaussian */
                CU_ASSERT(r <= privacy_order(k) / (2 * ss[j] * ss[j]) * (1 + 1e-12));
            }
    /* RDP grows with the order, q and 1/sigma */
    for (int k = 1; k < PRIVACY_NORDERS; k++)
        CU_ASSERT(privacy_rdp_sgm(0.05, 1.0, privacy_order(k)) >=
                  privacy_rdp_sgm(0.05, 1.0, privacy_order(k - 1)));
    CU_ASSERT(privacy_rdp_sgm(0.06, 1.0, 3.3) > privacy_rdp_sgm(0.05, 1.0, 3.3));
    CU_ASSERT(privacy_rdp_sgm(0.05, 0.9, 3.3) > privacy_rdp_sgm(0.05, 1.0, 3.3));
}

void tests_register_privacy(void)
{
    CU_pSuite s = CU_add_suite("privacy", NULL, NULL);
    tests_add(s, "orders_are_opacus_defaults", test_orders_are_opacus_defaults);
    tests_add(s, "rdp_single_steps", test_rdp_single_steps);
    tests_add(s, "epsilon_configs", test_epsilon_configs);
    tests_add(s, "conversion_formula", test_conversion_formula);
    tests_add(s, "heterogeneous_composition", test_heterogeneous_composition);
    tests_add(s, "sigma_for_epsilon", test_sigma_for_epsilon);
    tests_add(s, "edge_cases", test_edge_cases);
    tests_add(s, "stable_and_monotone", test_stable_and_monotone);
}
