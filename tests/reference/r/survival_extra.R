# Reference numbers for the extended survival core (tests/test_survival_extra_reference.py):
# Fine–Gray regression, Fleming–Harrington weighted log-rank, stratified Kaplan–Meier,
# left truncation (delayed entry) in KM / log-rank / Cox, RMST ratio and the
# covariate-adjusted RMST difference and ratio (Tian, Zhao & Wei 2014).
#
# Run from this folder (tests/reference/r/run_all.sh does):  Rscript survival_extra.R
# Writes ../data/surv_extra_*.csv and ../survival_extra_reference.json; every number sits
# beside the R call (or the hand computation, written out below) that produced it.
#
# Needs R >= 4.2 with survival (>= 3.5), cmprsk, jsonlite. survRM2 is not needed (and
# was not installable here): the unadjusted RMST ratio is survRM2's delta-method formula
# on rmst1() (as in survival.R), and the adjusted estimator is an independent
# person-by-person implementation of Tian et al. (2014) (lm/glm for the point estimate,
# explicit loops over censoring times for the influence terms), written from the paper
# and survRM2's documented conventions: censoring KM per arm, G evaluated at min(T, tau)
# (right-continuous), observations at or beyond tau count as events.
suppressPackageStartupMessages({
  library(survival)
  library(cmprsk)
  library(jsonlite)
})

out_data <- file.path("..", "data")
ref <- list(meta = list(
  R = R.version.string,
  survival = as.character(packageVersion("survival")),
  cmprsk = as.character(packageVersion("cmprsk")),
  script = "tests/reference/r/survival_extra.R"
))
na2null <- function(x) { x <- as.numeric(x); x[!is.finite(x)] <- NA; x }

# ---------------------------------------------------------------- data sets
vet <- survival::veteran
vet <- data.frame(
  id = seq_len(nrow(vet)), time = vet$time, event = vet$status,
  arm = as.integer(vet$trt == 2), stratum = as.character(vet$celltype),
  karno = vet$karno, age = vet$age
)
lg <- survival::lung
lg <- lg[!is.na(lg$inst) & !is.na(lg$ph.ecog), ]
lungq <- data.frame(
  id = seq_len(nrow(lg)), time = ceiling(lg$time / 91.3125), event = as.integer(lg$status == 2),
  arm = as.integer(lg$sex == 2), stratum = paste0("ecog", pmin(lg$ph.ecog, 2)),
  age = lg$age, cluster = as.integer(lg$inst)
)
# delayed entry: a deterministic entry quarter before the exit (0 for a third of persons)
set.seed(20261201)
lungq$entry <- ifelse(runif(nrow(lungq)) < 1 / 3, 0, floor(runif(nrow(lungq)) * lungq$time))
# mgus2 in quarters: competing exits (1 progression, 2 death without progression), heavy ties
mg <- survival::mgus2
mg <- mg[!is.na(mg$age), ]
mgq <- data.frame(
  id = mg$id,
  time = ceiling(ifelse(mg$pstat == 0, mg$futime, mg$ptime) / 3),
  event = ifelse(mg$pstat == 0, 2L * mg$death, 1L),
  arm = as.integer(mg$sex == "M"),
  age = mg$age,
  stratum = ifelse(mg$age >= 70, "old", "young")
)
mgq$time[mgq$time == 0] <- 1
write.csv(vet, file.path(out_data, "surv_extra_veteran.csv"), row.names = FALSE)
write.csv(lungq, file.path(out_data, "surv_extra_lungq.csv"), row.names = FALSE)
write.csv(mgq, file.path(out_data, "surv_extra_mgusq.csv"), row.names = FALSE)

# ---------------------------------------------------------------- Fine–Gray
fg_block <- function(d, name, failcode) {
  cov <- cbind(arm = d$arm, age = d$age)
  m <- crr(d$time, d$event, cov1 = cov, failcode = failcode, cencode = 0, gtol = 1e-12, maxiter = 100)
  fg <- finegray(Surv(time, factor(event)) ~ ., data = d, etype = as.character(failcode))
  cx <- coxph(Surv(fgstart, fgstop, fgstatus) ~ arm + age + cluster(id), weights = fgwt, data = fg,
              ties = "breslow", control = coxph.control(eps = 1e-12, toler.chol = 1e-15, iter.max = 100))
  m1 <- crr(d$time, d$event, cov1 = cbind(arm = d$arm), failcode = failcode, cencode = 0,
            gtol = 1e-12, maxiter = 100)
  list(
    crr_call = sprintf("crr(%s$time, %s$event, cov1 = cbind(arm, age), failcode = %d, cencode = 0, gtol = 1e-12, maxiter = 100)",
                       name, name, failcode),
    crr_coef = unname(m$coef), crr_se = unname(sqrt(diag(m$var))),
    crr_loglik = m$loglik, crr_loglik_null = m$loglik.null, crr_converged = m$converged,
    crr_arm_call = sprintf("crr(%s$time, %s$event, cov1 = cbind(arm), failcode = %d, cencode = 0, gtol = 1e-12)",
                           name, name, failcode),
    crr_arm_coef = unname(m1$coef), crr_arm_se = unname(sqrt(diag(m1$var))),
    finegray_call = sprintf("fg <- finegray(Surv(time, factor(event)) ~ ., data = %s, etype = '%d'); coxph(Surv(fgstart, fgstop, fgstatus) ~ arm + age + cluster(id), weights = fgwt, data = fg, ties = 'breslow')",
                            name, failcode),
    finegray_coef = unname(coef(cx)), finegray_robust_se = unname(sqrt(diag(vcov(cx)))),
    finegray_naive_se = unname(sqrt(diag(cx$naive.var)))
  )
}
# finegray() and crr() agree exactly unless a censoring ties with an exit in the same
# quarter (finegray then places the weight change differently, up to 1e-3 on the
# coefficients here); mgqc moves each censoring half a quarter later (what "censored at
# the end of the quarter" means), where the two conventions coincide.
mgqc <- mgq
mgqc$time <- mgqc$time + ifelse(mgqc$event == 0, 0.5, 0)
write.csv(mgqc, file.path(out_data, "surv_extra_mgusqc.csv"), row.names = FALSE)
ref$fine_gray <- list(mgusq_cause1 = fg_block(mgq, "mgq", 1L), mgusq_cause2 = fg_block(mgq, "mgq", 2L),
                      mgusqc_cause1 = fg_block(mgqc, "mgqc", 1L), mgusqc_cause2 = fg_block(mgqc, "mgqc", 2L))

# ---------------------------------------------------------------- Fleming–Harrington
# Hand computation of G(rho, gamma) (survdiff has gamma = 0 only): pooled KM within
# each stratum, weight S(t-)^rho (1 - S(t-))^gamma, hypergeometric variance;
# optional delayed entry (risk set entry < t <= time).
fh_hand <- function(time, event, arm, strata = NULL, rho = 0, gamma = 0, entry = NULL) {
  if (is.null(strata)) strata <- rep(1, length(time))
  if (is.null(entry)) entry <- rep(-Inf, length(time))
  U <- 0; V <- 0; O <- 0; E <- 0
  for (s in unique(strata)) {
    w <- strata == s
    tt <- sort(unique(time[w & event == 1]))
    alltimes <- sort(unique(time[w]))
    km <- 1
    for (t in alltimes) {
      risk <- w & entry < t & time >= t
      n <- sum(risk); n1 <- sum(risk & arm == 1)
      dd <- sum(w & time == t & event == 1); d1 <- sum(w & time == t & event == 1 & arm == 1)
      if (dd > 0) {
        wt <- km^rho * (1 - km)^gamma
        O <- O + wt * d1; E <- E + wt * dd * n1 / n
        if (n > 1) V <- V + wt^2 * dd * (n - dd) / (n - 1) * (n1 / n) * (1 - n1 / n)
        km <- km * (n - dd) / n
      }
    }
  }
  c(chisq = (O - E)^2 / V, obs = O, exp = E, var = V)
}
fh_block <- function(d, name) {
  r <- list()
  for (rho in c(0, 1, 0.5)) {
    sd <- survdiff(Surv(time, event) ~ arm, data = d, rho = rho)
    sds <- survdiff(Surv(time, event) ~ arm + strata(stratum), data = d, rho = rho)
    h <- fh_hand(d$time, d$event, d$arm, rho = rho)
    stopifnot(abs(h["chisq"] - sd$chisq) < 1e-10)
    hs <- fh_hand(d$time, d$event, d$arm, d$stratum, rho = rho)
    stopifnot(abs(hs["chisq"] - sds$chisq) < 1e-10)
    r[[sprintf("rho%g", rho)]] <- list(
      call = sprintf("survdiff(Surv(time, event) ~ arm, data = %s, rho = %g)", name, rho),
      chisq = sd$chisq, obs = unname(sd$obs[2]), exp = unname(sd$exp[2]), var = sd$var[2, 2],
      strata_call = sprintf("survdiff(Surv(time, event) ~ arm + strata(stratum), data = %s, rho = %g)", name, rho),
      strata_chisq = sds$chisq)
  }
  for (rg in list(c(0, 1), c(1, 1), c(2, 0.5))) {
    h <- fh_hand(d$time, d$event, d$arm, rho = rg[1], gamma = rg[2])
    hs <- fh_hand(d$time, d$event, d$arm, d$stratum, rho = rg[1], gamma = rg[2])
    r[[sprintf("rho%g_gamma%g", rg[1], rg[2])]] <- list(
      call = sprintf("fh_hand(time, event, arm, rho = %g, gamma = %g)  # hand computation above, = survdiff when gamma = 0", rg[1], rg[2]),
      chisq = unname(h["chisq"]), obs = unname(h["obs"]), exp = unname(h["exp"]),
      strata_chisq = unname(hs["chisq"]))
  }
  r
}
ref$fh <- list(veteran = fh_block(vet, "vet"), lungq = fh_block(lungq, "lungq"))

# ---------------------------------------------------------------- stratified KM
fit <- survfit(Surv(time, event) ~ arm + stratum, data = vet, conf.type = "log-log")
curves <- list()
for (i in seq_along(fit$strata)) {
  f <- fit[i]
  curves[[sub(" +$", "", names(fit$strata)[i])]] <- list(time = f$time, n_risk = f$n.risk, n_event = f$n.event,
                                         surv = f$surv, lower = na2null(f$lower), upper = na2null(f$upper))
}
ref$km_strata <- list(call = "survfit(Surv(time, event) ~ arm + stratum, data = vet, conf.type = 'log-log')",
                      curves = curves)

# ---------------------------------------------------------------- left truncation
d <- lungq
lt <- list()
fit <- survfit(Surv(entry, time, event) ~ arm, data = d, conf.type = "log-log")
for (a in 0:1) {
  f <- fit[a + 1]
  lt[[paste0("km_arm", a)]] <- list(
    call = "survfit(Surv(entry, time, event) ~ arm, data = lungq, conf.type = 'log-log')",
    time = f$time, n_risk = f$n.risk, n_event = f$n.event, surv = f$surv, std_err = na2null(f$std.err),
    lower = na2null(f$lower), upper = na2null(f$upper))
}
for (ties in c("efron", "breslow")) {
  m <- coxph(Surv(entry, time, event) ~ arm + age, data = d, ties = ties,
             control = coxph.control(eps = 1e-12, toler.chol = 1e-15, iter.max = 100))
  mr <- coxph(Surv(entry, time, event) ~ arm + age + strata(stratum) + cluster(cluster), data = d, ties = ties,
              control = coxph.control(eps = 1e-12, toler.chol = 1e-15, iter.max = 100))
  lt[[paste0("cox_", ties)]] <- list(
    call = sprintf("coxph(Surv(entry, time, event) ~ arm + age, data = lungq, ties = '%s')", ties),
    coef = unname(coef(m)), se = unname(sqrt(diag(vcov(m)))), loglik = m$loglik[2],
    strata_cluster_call = sprintf("coxph(Surv(entry, time, event) ~ arm + age + strata(stratum) + cluster(cluster), data = lungq, ties = '%s')", ties),
    strata_cluster_coef = unname(coef(mr)), strata_cluster_se = unname(sqrt(diag(vcov(mr)))))
}
h <- fh_hand(d$time, d$event, d$arm, entry = d$entry)
hs <- fh_hand(d$time, d$event, d$arm, d$stratum, entry = d$entry)
h1 <- fh_hand(d$time, d$event, d$arm, rho = 1, entry = d$entry)
# survdiff refuses (start, stop] data; the hand computation is checked against survdiff
# with entry = 0 (no truncation): same risk sets, so the same chi-square
h0 <- fh_hand(d$time, d$event, d$arm, entry = rep(0, nrow(d)))
stopifnot(abs(h0["chisq"] - survdiff(Surv(time, event) ~ arm, data = d)$chisq) < 1e-10)
lt$logrank <- list(
  call = "fh_hand(time, event, arm, entry = entry)  # hand computation above; = survdiff when entry = 0",
  chisq = unname(h["chisq"]), obs = unname(h["obs"]), exp = unname(h["exp"]), var = unname(h["var"]),
  strata_chisq = unname(hs["chisq"]), rho1_chisq = unname(h1["chisq"]))
ref$left_truncation <- lt

# ---------------------------------------------------------------- RMST ratio
rmst1 <- function(time, status, tau) {
  ft <- survfit(Surv(time, status) ~ 1)
  idx <- ft$time <= tau
  wk.time <- sort(c(ft$time[idx], tau))
  wk.surv <- ft$surv[idx]
  wk.n.risk <- ft$n.risk[idx]
  wk.n.event <- ft$n.event[idx]
  time.diff <- diff(c(0, wk.time))
  areas <- time.diff * c(1, wk.surv)
  rmst <- sum(areas)
  wk.var <- ifelse((wk.n.risk - wk.n.event) == 0, 0,
                   wk.n.event / (wk.n.risk * (wk.n.risk - wk.n.event)))
  wk.var <- c(wk.var, 0)
  rmst.var <- sum(cumsum(rev(areas[-1]))^2 * rev(wk.var)[-1])
  c(rmst = rmst, var = rmst.var)
}
ratio_block <- function(d, tau) {
  r1 <- rmst1(d$time[d$arm == 1], d$event[d$arm == 1], tau)
  r0 <- rmst1(d$time[d$arm == 0], d$event[d$arm == 0], tau)
  lr <- log(r1["rmst"]) - log(r0["rmst"])
  se <- sqrt(r1["var"] / r1["rmst"]^2 + r0["var"] / r0["rmst"]^2)
  list(call = sprintf("survRM2::rmst2 'RMST (arm=1)/(arm=0)': log ratio and delta-method SE on rmst1() per arm, tau = %g", tau),
       tau = tau, log_ratio = unname(lr), se_log_ratio = unname(se), ratio = unname(exp(lr)),
       lower = unname(exp(lr - qnorm(0.975) * se)), upper = unname(exp(lr + qnorm(0.975) * se)),
       p = unname(2 * pnorm(-abs(lr / se))))
}

# Adjusted RMST (Tian, Zhao & Wei 2014): IPCW estimating equations
#   sum_i w_i x_i (Y_i - g(x_i'b)) = 0,  Y = min(T, tau),  w = Delta / G_arm(Y),
# with the sandwich A^-1 (sum_i k_i k_i') A^-1, k_i the score plus the martingale term of
# the censoring KM: k_i = s_i + int q(t)/Y(t) dM^c_i(t), q(t) = sum_{Y_j >= t} s_j (per arm).
tian <- function(time, status, arm, x, tau, type) {
  y <- pmin(time, tau); dl <- status; dl[y == tau] <- 1
  X <- cbind(1, arm, x)
  w <- numeric(length(y))
  for (a in 0:1) {
    ia <- which(arm == a)
    gc <- survfit(Surv(y[ia], 1 - dl[ia]) ~ 1)
    sg <- summary(gc, times = sort(unique(y[ia])), extend = TRUE)  # sorted, unique times
    G <- sg$surv[match(y[ia], sg$time)]
    w[ia] <- dl[ia] / G
  }
  if (type == "difference") {
    b <- coef(lm(y ~ X - 1, weights = w)); mu <- as.vector(X %*% b); A <- t(X) %*% X
  } else {
    b <- coef(glm(y ~ X - 1, weights = w, family = quasipoisson(),
                  control = glm.control(epsilon = 1e-14, maxit = 100)))
    mu <- exp(as.vector(X %*% b)); A <- t(X * mu) %*% X
  }
  s <- X * (w * (y - mu))
  K <- s
  for (a in 0:1) {
    ia <- which(arm == a)
    for (i in ia) {
      # int q(t)/Y(t) dN^c_i(t) - int 1{Y_i >= t} q(t)/Y(t)^2 dN^c(t), over censoring times of arm a
      for (t in unique(y[ia][dl[ia] == 0])) {
        if (y[i] < t) next
        atr <- ia[y[ia] >= t]
        q <- colSums(s[atr, , drop = FALSE])
        nr <- length(atr)
        nc <- sum(y[ia] == t & dl[ia] == 0)
        if (y[i] == t && dl[i] == 0) K[i, ] <- K[i, ] + q / nr
        K[i, ] <- K[i, ] - q * nc / nr^2
      }
    }
  }
  V <- solve(A) %*% (t(K) %*% K) %*% solve(A)
  list(coef = unname(b[2]), se = unname(sqrt(V[2, 2])))
}
adj_block <- function(d, name, covs, tau) {
  x <- as.matrix(d[, covs, drop = FALSE])
  a <- tian(d$time, d$event, d$arm, x, tau, "difference")
  b <- tian(d$time, d$event, d$arm, x, tau, "ratio")
  list(call = sprintf("Tian et al. (2014) as survRM2::rmst2(time, status, arm, tau = %g, covariates = %s[, c(%s)]): hand computation above",
                      tau, name, paste0("'", covs, "'", collapse = ", ")),
       tau = tau, covariates = covs,
       difference = a$coef, difference_se = a$se,
       log_ratio = b$coef, log_ratio_se = b$se)
}
ref$rmst <- list(
  veteran = c(ratio_block(vet, 200), list(adjusted = adj_block(vet, "vet", c("karno", "age"), 200))),
  lungq = c(ratio_block(lungq, 8), list(adjusted = adj_block(lungq, "lungq", c("age"), 8)))
)

writeLines(toJSON(ref, digits = NA, auto_unbox = TRUE, na = "null", pretty = TRUE),
           file.path("..", "survival_extra_reference.json"))
cat("wrote ../survival_extra_reference.json\n")
