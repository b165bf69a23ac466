# Reference numbers for ips_impact survival estimators (tests/test_survival_reference.py).
#
# Run from this folder (tests/reference/r/run_all.sh does):  Rscript survival.R
# Writes ../data/surv_*.csv (the data sets, exported from R packages) and
# ../survival_reference.json: every number sits beside the R call that produced it.
#
# Needs R >= 4.2 with survival (>= 3.5), cmprsk, jsonlite, sandwich.
# survRM2 is not needed: its variance formula (rmst1() in survRM2 1.0-4) is written out
# below, and survival's print(survfit, rmean = tau) is stored beside it for comparison.
suppressPackageStartupMessages({
  library(survival)
  library(cmprsk)
  library(jsonlite)
  library(sandwich)
})

out_data <- file.path("..", "data")
dir.create(out_data, showWarnings = FALSE, recursive = TRUE)

ref <- list(
  meta = list(
    R = R.version.string,
    survival = as.character(packageVersion("survival")),
    cmprsk = as.character(packageVersion("cmprsk")),
    sandwich = as.character(packageVersion("sandwich")),
    script = "tests/reference/r/survival.R"
  )
)

# Each entry: list(call = "<R call>", value = <number or vector>)
entry <- function(call, value) list(call = call, value = value)
na2null <- function(x) { x <- as.numeric(x); x[!is.finite(x)] <- NA; x }

# ---------------------------------------------------------------- data sets
# veteran: two arms (trt 1 standard, 2 test), strata = celltype, ties in time.
vet <- survival::veteran
vet <- data.frame(
  id = seq_len(nrow(vet)), time = vet$time, event = vet$status,
  arm = as.integer(vet$trt == 2), stratum = as.character(vet$celltype),
  karno = vet$karno, age = vet$age
)
# lung: arm = female, cluster = institution; rows with missing inst / ph.ecog dropped.
lg <- survival::lung
lg <- lg[!is.na(lg$inst) & !is.na(lg$ph.ecog), ]
lung <- data.frame(
  id = seq_len(nrow(lg)), time = lg$time, event = as.integer(lg$status == 2),
  arm = as.integer(lg$sex == 2), stratum = paste0("ecog", pmin(lg$ph.ecog, 2)),  # ecog 3: 1 person
  age = lg$age, cluster = as.integer(lg$inst)
)
# lung in quarters (91.3125 days): heavy ties, as in quarterly LMD data.
lungq <- lung
lungq$time <- ceiling(lungq$time / 91.3125)
# mgus2: competing risks (1 = progression to plasma-cell malignancy, 2 = death
# without progression, 0 = censored); arm = male.
mg <- survival::mgus2
mgus <- data.frame(
  id = mg$id,
  time = ifelse(mg$pstat == 0, mg$futime, mg$ptime),
  event = ifelse(mg$pstat == 0, 2L * mg$death, 1L),
  arm = as.integer(mg$sex == "M"),
  stratum = ifelse(mg$age >= 70, "old", "young")
)

write.csv(vet, file.path(out_data, "surv_veteran.csv"), row.names = FALSE)
write.csv(lung, file.path(out_data, "surv_lung.csv"), row.names = FALSE)
write.csv(lungq, file.path(out_data, "surv_lungq.csv"), row.names = FALSE)
write.csv(mgus, file.path(out_data, "surv_mgus2.csv"), row.names = FALSE)

# ---------------------------------------------------------------- survRM2 by hand
# survRM2::rmst2 -> rmst1(time, status, tau): the variance of the RMST estimator
#   var = sum_j [ int_{t_j}^tau S(u) du ]^2 * d_j / (n_j (n_j - d_j)).
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
  c(rmst = rmst, se = sqrt(rmst.var))
}

# ---------------------------------------------------------------- two-arm survival
survival_block <- function(d, name, tau, tau_surv, cox_cov, cluster = FALSE) {
  r <- list()
  fit <- survfit(Surv(time, event) ~ arm, data = d, conf.type = "log-log")
  call_km <- sprintf("survfit(Surv(time, event) ~ arm, data = %s, conf.type = 'log-log')", name)
  for (a in 0:1) {
    f <- fit[a + 1]
    key <- paste0("km_arm", a)
    r[[key]] <- list(
      call = call_km,
      time = f$time, n_risk = f$n.risk, n_event = f$n.event, n_censor = f$n.censor,
      surv = f$surv, std_err = f$std.err, lower = na2null(f$lower), upper = na2null(f$upper)
    )
  }
  q <- quantile(fit, probs = 0.5)
  r$median <- entry(sprintf("quantile(%s, probs = 0.5) with fit = %s", "fit", call_km),
                    list(median = na2null(q$quantile), lower = na2null(q$lower),
                         upper = na2null(q$upper)))
  st <- summary(fit, times = tau_surv, extend = TRUE)
  r$surv_at_tau <- entry(sprintf("summary(fit, times = %s, extend = TRUE)", tau_surv),
                         list(tau = tau_surv, surv = st$surv, std_err = st$std.err))
  # RMST per arm: survRM2 formula and survival's own
  rm <- sapply(0:1, function(a) rmst1(d$time[d$arm == a], d$event[d$arm == a], tau))
  pm <- summary(fit, rmean = tau)$table
  diff <- rm["rmst", 2] - rm["rmst", 1]
  se <- sqrt(sum(rm["se", ]^2))
  r$rmst <- list(
    call = sprintf("survRM2::rmst2 formula (rmst1 above) per arm, tau = %s", tau),
    tau = tau, rmst = unname(rm["rmst", ]), se = unname(rm["se", ]),
    difference = unname(diff), difference_se = unname(se),
    difference_p = unname(2 * pnorm(-abs(diff / se))),
    survival_rmean_call = sprintf("summary(fit, rmean = %s)$table[, c('rmean', 'se(rmean)')]", tau),
    survival_rmean = unname(pm[, "rmean"]), survival_rmean_se = unname(pm[, "se(rmean)"])
  )
  sd <- survdiff(Surv(time, event) ~ arm, data = d)
  r$logrank <- list(call = sprintf("survdiff(Surv(time, event) ~ arm, data = %s)", name),
                    chisq = sd$chisq, obs = sd$obs, exp = sd$exp, var = sd$var[1, 1])
  sds <- survdiff(Surv(time, event) ~ arm + strata(stratum), data = d)
  r$logrank_strata <- list(
    call = sprintf("survdiff(Surv(time, event) ~ arm + strata(stratum), data = %s)", name),
    chisq = sds$chisq, obs = rowSums(sds$obs), exp = rowSums(sds$exp), var = sds$var[1, 1])
  cl <- if (cluster) " + cluster(cluster)" else " + cluster(id)"
  forms <- list(
    cox_arm = "Surv(time, event) ~ arm",
    cox_strata = paste0("Surv(time, event) ~ arm + ", cox_cov, " + strata(stratum)"),
    cox_robust = paste0("Surv(time, event) ~ arm + ", cox_cov, cl)
  )
  for (nm in names(forms)) {
    for (ties in c("efron", "breslow")) {
      fm <- as.formula(forms[[nm]])
      m <- coxph(fm, data = d, ties = ties)
      z <- cox.zph(m)
      call <- sprintf("coxph(%s, data = %s, ties = '%s')", forms[[nm]], name, ties)
      r[[paste0(nm, "_", ties)]] <- list(
        call = call,
        coef = unname(coef(m)), se = unname(sqrt(diag(vcov(m)))),
        naive_se = unname(sqrt(diag(m$naive.var %||% m$var))),
        loglik = m$loglik[2],
        zph_call = sprintf("cox.zph(m)$table  # m = %s", call),
        zph_chisq = unname(z$table[, "chisq"]), zph_df = unname(z$table[, "df"]),
        zph_p = unname(z$table[, "p"]), zph_rows = rownames(z$table)
      )
    }
  }
  r
}
`%||%` <- function(a, b) if (is.null(a)) b else a

ref$veteran <- survival_block(vet, "vet", tau = 200, tau_surv = 100, cox_cov = "karno")
ref$lung <- survival_block(lung, "lung", tau = 600, tau_surv = 365, cox_cov = "age", cluster = TRUE)
ref$lungq <- survival_block(lungq, "lungq", tau = 8, tau_surv = 4, cox_cov = "age", cluster = TRUE)

# ---------------------------------------------------------------- discrete-time hazard
# Person-period rows of lungq: one row per person and quarter at risk, y = 1 in the
# event quarter. GLM (cloglog / logit) with quarter dummies, SE clustered by person
# (sandwich::vcovCL, type HC1 = statsmodels' default small-sample correction).
pp <- do.call(rbind, lapply(seq_len(nrow(lungq)), function(i) {
  tt <- seq_len(lungq$time[i])
  data.frame(id = lungq$id[i], k = tt, arm = lungq$arm[i],
             y = as.integer(tt == lungq$time[i] & lungq$event[i] == 1))
}))
# quarters in which nobody has the event carry no information on the arm effect (their
# intercepts diverge to -Inf); ips_impact leaves them out, and so does the reference.
pp <- pp[pp$k %in% unique(pp$k[pp$y == 1]), ]
for (link in c("cloglog", "logit")) {
  g <- glm(y ~ arm + factor(k), family = binomial(link = link), data = pp,
           control = glm.control(epsilon = 1e-12, maxit = 100))
  V <- vcovCL(g, cluster = ~id, type = "HC1")
  ref$lungq[[paste0("discrete_", link)]] <- list(
    call = sprintf("glm(y ~ arm + factor(k), family = binomial(link = '%s'), control = glm.control(epsilon = 1e-12), data = person-period rows of lungq in quarters with >= 1 event); sqrt(diag(sandwich::vcovCL(g, cluster = ~id, type = 'HC1')))['arm']", link),
    coef = unname(coef(g)["arm"]), se = unname(sqrt(V["arm", "arm"])), n_rows = nrow(pp)
  )
}

# ---------------------------------------------------------------- competing risks
ci_block <- function(d, name, times) {
  r <- list()
  ci <- cuminc(d$time, d$event, group = d$arm, cencode = 0)
  call <- sprintf("cuminc(%s$time, %s$event, group = %s$arm, cencode = 0)", name, name, name)
  r$gray <- list(call = paste0(call, "$Tests"), stat = unname(ci$Tests[, "stat"]),
                 pv = unname(ci$Tests[, "pv"]), df = unname(ci$Tests[, "df"]),
                 cause = rownames(ci$Tests))
  cis <- cuminc(d$time, d$event, group = d$arm, strata = d$stratum, cencode = 0)
  r$gray_strata <- list(
    call = sprintf("cuminc(%s$time, %s$event, group = %s$arm, strata = %s$stratum, cencode = 0)$Tests",
                   name, name, name, name),
    stat = unname(cis$Tests[, "stat"]), pv = unname(cis$Tests[, "pv"]),
    df = unname(cis$Tests[, "df"]), cause = rownames(cis$Tests))
  curves <- list()
  for (nm in names(ci)[names(ci) != "Tests"]) {
    curves[[nm]] <- list(time = ci[[nm]]$time, est = ci[[nm]]$est, var = ci[[nm]]$var)
  }
  r$curves <- list(call = paste0(call, "[['<arm> <cause>']]  (time, est, var: step corners)"),
                   curves = curves)
  tp <- timepoints(ci, times)
  r$timepoints <- list(call = sprintf("timepoints(ci, c(%s))", paste(times, collapse = ", ")),
                       times = times, rows = rownames(tp$est),
                       est = unname(tp$est), var = unname(tp$var))
  r
}
ref$mgus2 <- ci_block(mgus, "mgus", times = c(60, 120, 240))
ref$mgus2$cause_codes <- "1 = progression (PCM), 2 = death without progression"

writeLines(toJSON(ref, digits = NA, auto_unbox = TRUE, na = "null", pretty = TRUE),
           file.path("..", "survival_reference.json"))
cat("wrote ../survival_reference.json\n")
