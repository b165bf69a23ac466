# Reference numbers for ips_impact.estimators.iv (2SLS / LATE) and
# ips_impact.estimators.bounds (Lee bounds, Imbens-Manski interval).
#
# Run from anywhere:  Rscript tests/reference/r/iv_bounds.R
# Writes tests/reference/data/iv_*.csv (the exact data the Python tests read) and
# tests/reference/iv_bounds_reference.json (every number with the R call beside it).
#
# Datasets (all ship with R packages):
#   iv_cigarettes.csv  AER::CigarettesSW (48 US states, 1985 and 1995): demand for
#                      cigarettes, log packs on log real price instrumented by the sales-tax
#                      difference and the real cigarette tax (Stock & Watson ch. 12).
#   iv_fertility.csv   AER::Fertility, first 5,000 rows (1980 US census, Angrist & Evans
#                      1998): mother's work on having more than two children, instrumented
#                      by the first two children having the same sex. Binary instrument and
#                      binary treatment, the structure of the IPS take-up LATE.
#   iv_star_stack.csv  AER::STAR pupils assigned to small / regular classes in kindergarten,
#                      class type in grade 1, reading scores in grades K-3 (LATE on stacked
#                      person-period rows, subsets, "lin" and blocked designs).
#   iv_star_lee.csv    AER::STAR kindergarten assignment (small class vs regular class):
#                      3rd-grade reading score, observed only for pupils still in the study
#                      in grade 3 (selection = score observed). Lee bounds by hand.
#
# 2SLS: estimatr::iv_robust for every se_type; AER::ivreg + sandwich for HC0/HC1 as a
# second implementation. Lee bounds: computed below from their definition (quantile
# integrals of the empirical distribution; Lee 2009 Proposition 3 standard errors), by
# code written independently of the Python implementation.
suppressPackageStartupMessages({
  library(estimatr)
  library(sandwich)
  library(AER)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
ref_dir <- normalizePath(file.path(here, ".."))
data_dir <- file.path(ref_dir, "data")
dir.create(data_dir, showWarnings = FALSE)

# ---------------------------------------------------------------- data
data("CigarettesSW", package = "AER")
cg <- CigarettesSW
cig <- data.frame(
  state = as.character(cg$state),
  year = as.integer(as.character(cg$year)),
  lpacks = log(cg$packs),
  lrprice = log(cg$price / cg$cpi),
  lrincome = log(cg$income / cg$population / cg$cpi),
  tdiff = (cg$taxs - cg$tax) / cg$cpi,
  rtax = cg$tax / cg$cpi,
  stringsAsFactors = FALSE
)
cig$y1995 <- as.integer(cig$year == 1995)
write.csv(cig, file.path(data_dir, "iv_cigarettes.csv"), row.names = FALSE)
cig95 <- cig[cig$year == 1995, ]

data("Fertility", package = "AER")
fe <- Fertility[1:5000, ]
fert <- data.frame(
  work = fe$work,
  morekids = as.integer(fe$morekids == "yes"),
  samesex = as.integer(as.character(fe$gender1) == as.character(fe$gender2)),
  age = fe$age,
  afam = as.integer(fe$afam == "yes"),
  hispanic = as.integer(fe$hispanic == "yes"),
  other = as.integer(fe$other == "yes")
)
write.csv(fert, file.path(data_dir, "iv_fertility.csv"), row.names = FALSE)

data("STAR", package = "AER")
st <- STAR[!is.na(STAR$stark) & STAR$stark != "regular+aide", ]
star <- data.frame(
  small = as.integer(st$stark == "small"),
  observed = as.integer(!is.na(st$read3)),
  read3 = st$read3
)
rownames(star) <- NULL
write.csv(star, file.path(data_dir, "iv_star_lee.csv"), row.names = FALSE, na = "")

# ---------------------------------------------------------------- 2SLS cases
cases <- list()
coefs_of <- function(fit) {
  list(estimate = as.list(coef(fit)), std_error = as.list(fit$std.error))
}
add_iv <- function(id, dataset, formula_txt, endog, se_type, clusters = NULL, data, note = NULL) {
  f <- as.formula(formula_txt)
  if (is.null(clusters)) {
    fit <- iv_robust(f, data = data, se_type = se_type)
    call <- sprintf("estimatr::iv_robust(%s, data = %s, se_type = \"%s\")", formula_txt, dataset, se_type)
  } else {
    fit <- iv_robust(f, data = data, se_type = se_type, clusters = data[[clusters]])
    call <- sprintf("estimatr::iv_robust(%s, data = %s, se_type = \"%s\", clusters = %s)",
                    formula_txt, dataset, se_type, clusters)
  }
  cases[[length(cases) + 1]] <<- list(
    id = id, call = call, note = note,
    dataset = dataset, se_type = se_type, clusters = clusters, endog = endog,
    estimate = unname(coef(fit)[endog]),
    std_error = unname(fit$std.error[endog]),
    df = unname(fit$df[endog]),
    p_value = unname(fit$p.value[endog]),
    conf_low = unname(fit$conf.low[endog]),
    conf_high = unname(fit$conf.high[endog]),
    nobs = fit$nobs,
    coefficients = coefs_of(fit)
  )
}

cig_f <- "lpacks ~ lrprice + lrincome | lrincome + tdiff + rtax"
for (se in c("HC0", "HC1", "HC2", "HC3", "stata")) {
  add_iv(paste0("cig95_", se), "iv_cigarettes.csv[year == 1995]", cig_f, "lrprice", se, data = cig95)
}
cig_fc <- "lpacks ~ lrprice + lrincome + y1995 | lrincome + y1995 + tdiff + rtax"
for (se in c("CR0", "stata", "CR2")) {
  add_iv(paste0("cigpanel_", se), "iv_cigarettes.csv", cig_fc, "lrprice", se, clusters = "state",
         data = cig)
}
fert_f <- "work ~ morekids + age + afam + hispanic + other | samesex + age + afam + hispanic + other"
for (se in c("HC0", "HC1", "HC2", "HC3", "stata")) {
  add_iv(paste0("fert_", se), "iv_fertility.csv", fert_f, "morekids", se, data = fert)
}
add_iv("fert_wald_HC2", "iv_fertility.csv", "work ~ morekids | samesex", "morekids", "HC2", data = fert,
       note = "no covariates: the estimate is the Wald ratio")

# ---- LATE on person-period ("stacked") rows, with subsets, and the "lin" / blocked
# designs of ips_impact.estimators.iv.late. Data: AER::STAR, pupils assigned in
# kindergarten to a small or a regular class (instrument z = small), with the class type
# of grade 1 known (endogenous d = in a small class in grade 1: a pupil-level constant,
# like IPS take-up), reading scores in grades K, 1, 2, 3 (event time k = 0..3; missing
# scores are absent rows), randomization within schools (strata = schoolidk).
stk <- STAR[!is.na(STAR$stark) & STAR$stark != "regular+aide" & !is.na(STAR$star1) &
            !is.na(STAR$gender) & !is.na(STAR$ethnicity) & !is.na(STAR$schoolidk), ]
# schools left with one arm only (5 schools, 10 pupils) have no within-school contrast
both <- tapply(stk$stark == "small", stk$schoolidk, function(v) any(v) && !all(v))
stk <- stk[both[as.character(stk$schoolidk)] %in% TRUE, ]
star_p <- data.frame(
  id = sprintf("s%05d", seq_len(nrow(stk))),
  school = sprintf("sch%03d", as.integer(as.character(stk$schoolidk))),
  school_type = as.character(stk$schoolk),
  small = as.integer(stk$stark == "small"),
  small1 = as.integer(stk$star1 == "small"),
  female = as.integer(stk$gender == "female"),
  cauc = as.integer(stk$ethnicity == "cauc"),
  readk = stk$readk, read1 = stk$read1, read2 = stk$read2, read3 = stk$read3,
  stringsAsFactors = FALSE
)
write.csv(star_p, file.path(data_dir, "iv_star_stack.csv"), row.names = FALSE, na = "")
# long rows, observed scores only
star_l <- do.call(rbind, lapply(0:3, function(k) {
  v <- c("readk", "read1", "read2", "read3")[k + 1]
  d <- star_p[, c("id", "school", "school_type", "small", "small1", "female", "cauc")]
  d$k <- k
  d$read <- star_p[[v]]
  d[!is.na(d$read), ]
}))
star_l <- star_l[order(star_l$id, star_l$k), ]
# centred (over the estimation rows) covariates and stratum dummies, for "lin" / blocked
centre <- function(M) sweep(M, 2, colMeans(M))
add_iv_df <- function(id, dataset, formula_txt, se_type, data, clusters = NULL, note = NULL,
                      late_call = NULL) {
  add_iv(id, dataset, formula_txt, "small1", se_type, clusters = clusters, data = data, note = note)
  cases[[length(cases)]]$late_call <<- late_call
}
add_iv_df("star_stack_ancova_CR2", "iv_star_stack.csv, long rows with a score",
          "read ~ small1 + female + cauc + factor(school) + factor(k) | small + female + cauc + factor(school) + factor(k)",
          "CR2", star_l, clusters = "id",
          note = "stacked person-period rows, period and school fixed effects, clustered by pupil",
          late_call = "late(study, 'read', takeup='small1', window=(0, 3), aggregate='stack', covariates=['female', 'cauc'])")
add_iv_df("star_stack_ancova_CR1", "iv_star_stack.csv, long rows with a score",
          "read ~ small1 + female + cauc + factor(school) + factor(k) | small + female + cauc + factor(school) + factor(k)",
          "stata", star_l, clusters = "id",
          late_call = "late(study, 'read', takeup='small1', window=(0, 3), aggregate='stack', covariates=['female', 'cauc'], cov_type='CR1')")
# "lin" on stacked rows: centred covariates and stratum (school type) dummies, and their
# products with the instrument, are exogenous regressors; period effects additive
Wl <- centre(model.matrix(~ female + cauc + factor(school_type), star_l)[, -1, drop = FALSE])
colnames(Wl) <- paste0("w", seq_len(ncol(Wl)))
lin_l <- cbind(star_l[, c("id", "k", "read", "small", "small1")], Wl, star_l$small * Wl)
names(lin_l)[(ncol(lin_l) - ncol(Wl) + 1):ncol(lin_l)] <- paste0("zw", seq_len(ncol(Wl)))
rhs <- paste(c(paste0("w", seq_len(ncol(Wl))), paste0("zw", seq_len(ncol(Wl))), "factor(k)"), collapse = " + ")
add_iv_df("star_stack_lin_CR2", "iv_star_stack.csv, long rows with a score",
          sprintf("read ~ small1 + %s | small + %s", rhs, rhs), "CR2", lin_l, clusters = "id",
          note = "w = female, cauc, school_type dummies centred over the rows; zw = small * w",
          late_call = "late(study, 'read', takeup='small1', window=(0, 3), aggregate='stack', covariates=['female', 'cauc'], adjustment='lin', strata='school_type')")
# horizon k = 3 among girls (subset), school fixed effects
girls3 <- droplevels(transform(star_p[star_p$female == 1 & !is.na(star_p$read3), ], school = factor(school)))
add_iv_df("star_girls_k3_HC2", "iv_star_stack.csv[female == 1 & read3 observed]",
          "read3 ~ small1 + cauc + factor(school) | small + cauc + factor(school)", "HC2", girls3,
          note = "subset: girls; schools without a girl drop out",
          late_call = "late(study, 'read', takeup='small1', horizon=3, covariates=['cauc'], subset='female == 1')")
# horizon k = 3, blocked ("none" with strata = school type): centred dummies and their
# products with the instrument
p3 <- star_p[!is.na(star_p$read3), ]
S3 <- centre(model.matrix(~ factor(school_type), p3)[, -1, drop = FALSE])
colnames(S3) <- paste0("s", seq_len(ncol(S3)))
none3 <- cbind(p3[, c("read3", "small", "small1")], S3, p3$small * S3)
names(none3)[(ncol(none3) - ncol(S3) + 1):ncol(none3)] <- paste0("zs", seq_len(ncol(S3)))
rhs3 <- paste(c(paste0("s", seq_len(ncol(S3))), paste0("zs", seq_len(ncol(S3)))), collapse = " + ")
add_iv_df("star_k3_none_blocked_HC2", "iv_star_stack.csv[read3 observed]",
          sprintf("read3 ~ small1 + %s | small + %s", rhs3, rhs3), "HC2", none3,
          note = "s = school_type dummies centred; zs = small * s: blocked ITT / blocked first stage",
          late_call = "late(study, 'read', takeup='small1', horizon=3, adjustment='none', strata='school_type')")
# the two ratio identities behind "none" (blocked Wald) and "lin": the LATE is the ratio of
# the ITT and first-stage coefficients of the same lm_robust design
rf3 <- lm_robust(as.formula(sprintf("read3 ~ small + %s", rhs3)), data = none3, se_type = "HC2")
fs3 <- lm_robust(as.formula(sprintf("small1 ~ small + %s", rhs3)), data = none3, se_type = "HC2")
blocked_ratio <- list(
  call = "lm_robust(read3 ~ small + s + zs) / lm_robust(small1 ~ small + s + zs), HC2",
  itt = unname(coef(rf3)["small"]), itt_std_error = unname(rf3$std.error["small"]),
  first_stage = unname(coef(fs3)["small"]), first_stage_std_error = unname(fs3$std.error["small"]),
  ratio = unname(coef(rf3)["small"] / coef(fs3)["small"])
)

# second implementation: AER::ivreg with sandwich (HC0, HC1 only: sandwich's HC2/HC3 for
# ivreg use other leverages than estimatr)
aer_cases <- list()
add_aer <- function(id, dataset, formula_txt, endog, type, data) {
  fit <- AER::ivreg(as.formula(formula_txt), data = data)
  V <- sandwich::vcovHC(fit, type = type)
  aer_cases[[length(aer_cases) + 1]] <<- list(
    id = id,
    call = sprintf("sandwich::vcovHC(AER::ivreg(%s, data = %s), type = \"%s\")", formula_txt, dataset, type),
    dataset = dataset, type = type, endog = endog,
    estimate = unname(coef(fit)[endog]),
    std_error = unname(sqrt(diag(V))[endog])
  )
}
for (tp in c("HC0", "HC1")) {
  add_aer(paste0("aer_cig95_", tp), "iv_cigarettes.csv[year == 1995]", cig_f, "lrprice", tp, cig95)
  add_aer(paste0("aer_fert_", tp), "iv_fertility.csv", fert_f, "morekids", tp, fert)
}

# first stage of the Fertility model (robust F = t^2 of samesex with HC2)
fs <- lm_robust(morekids ~ samesex + age + afam + hispanic + other, data = fert, se_type = "HC2")
first_stage <- list(
  call = "estimatr::lm_robust(morekids ~ samesex + age + afam + hispanic + other, data = iv_fertility.csv, se_type = \"HC2\")",
  estimate = unname(coef(fs)["samesex"]),
  std_error = unname(fs$std.error["samesex"]),
  f_robust = unname((coef(fs)["samesex"] / fs$std.error["samesex"])^2)
)

# ---------------------------------------------------------------- Lee bounds by hand
# Empirical quantile function of a sample y (n values): Q(u) = y_(i) on ((i-1)/n, i/n].
# Trimmed means are integrals of Q over [0, 1-p] (lower) and [p, 1] (upper), divided by 1-p.
qint <- function(ys, a, b) {
  # integral of Q over [a, b] and of (Q - c)^2 given c, using interval overlaps
  n <- length(ys)
  lo <- (seq_len(n) - 1) / n
  hi <- seq_len(n) / n
  len <- pmax(0, pmin(hi, b) - pmax(lo, a))
  list(len = len)
}
lee_by_hand <- function(y, s, z, level = 0.95) {
  n <- length(z); n1 <- sum(z == 1); n0 <- n - n1
  s1 <- mean(s[z == 1]); s0 <- mean(s[z == 0])
  pi1 <- n1 / n; pi0 <- n0 / n
  trim_treated <- s1 >= s0
  p <- if (trim_treated) (s1 - s0) / s1 else (s0 - s1) / s0
  yt <- sort(if (trim_treated) y[z == 1 & s == 1] else y[z == 0 & s == 1])
  yo <- if (trim_treated) y[z == 0 & s == 1] else y[z == 1 & s == 1]
  st <- if (trim_treated) s1 else s0
  pit <- if (trim_treated) pi1 else pi0
  so <- if (trim_treated) s0 else s1
  pio <- if (trim_treated) pi0 else pi1
  nt <- length(yt)
  wl <- qint(yt, 0, 1 - p)$len
  wu <- qint(yt, p, 1)$len
  mu_l <- sum(wl * yt) / (1 - p); var_l <- sum(wl * (yt - mu_l)^2) / (1 - p)
  mu_u <- sum(wu * yt) / (1 - p); var_u <- sum(wu * (yt - mu_u)^2) / (1 - p)
  # boundary quantiles: the largest kept value of the lower part, the smallest of the upper
  q_l <- yt[ceiling((1 - p) * nt - 1e-9)]
  q_u <- yt[floor(p * nt + 1e-9) + 1]
  mu_o <- mean(yo); var_o <- mean((yo - mu_o)^2)
  vp <- (1 - p)^2 * ((1 - s0) / (s0 * pi0) + (1 - s1) / (s1 * pi1))
  vt <- function(mu, v, q) (v + p * (q - mu)^2) / (st * pit * (1 - p)) + ((q - mu) / (1 - p))^2 * vp
  vo <- var_o / (so * pio)
  if (trim_treated) {
    lower <- mu_l - mu_o; upper <- mu_u - mu_o
    se_l <- sqrt((vt(mu_l, var_l, q_l) + vo) / n); se_u <- sqrt((vt(mu_u, var_u, q_u) + vo) / n)
  } else {
    lower <- mu_o - mu_u; upper <- mu_o - mu_l
    se_l <- sqrt((vt(mu_u, var_u, q_u) + vo) / n); se_u <- sqrt((vt(mu_l, var_l, q_l) + vo) / n)
  }
  # Imbens-Manski (2004): Phi(C + (U - L) / max(se)) - Phi(-C) = level
  smax <- max(se_l, se_u)
  g <- function(C) pnorm(C + (upper - lower) / smax) - pnorm(-C) - level
  C <- uniroot(g, c(qnorm(level) - 1e-6, qnorm((1 + level) / 2) + 1e-6), tol = 1e-14)$root
  list(lower = lower, upper = upper, se_lower = se_l, se_upper = se_u, trim_share = p,
       trimmed_arm = if (trim_treated) "treated" else "control",
       share_selected_treated = s1, share_selected_control = s0,
       n_selected_treated = sum(z == 1 & s == 1), n_selected_control = sum(z == 0 & s == 1),
       im_c = C, conf_low = lower - C * se_l, conf_high = upper + C * se_u, level = level)
}
lee_cases <- list(
  c(list(id = "star_small", dataset = "iv_star_lee.csv", arm = "small", selected = "observed",
         outcome = "read3",
         call = "lee_by_hand(y = read3, s = observed, z = small, level = 0.95)"),
    lee_by_hand(ifelse(star$observed == 1, star$read3, NA), star$observed, star$small)),
  c(list(id = "star_regular", dataset = "iv_star_lee.csv", arm = "1 - small", selected = "observed",
         outcome = "read3",
         call = "lee_by_hand(y = read3, s = observed, z = 1 - small, level = 0.90)"),
    lee_by_hand(ifelse(star$observed == 1, star$read3, NA), star$observed, 1 - star$small, level = 0.90))
)

out <- list(
  generated_by = "Rscript tests/reference/r/iv_bounds.R",
  r_version = R.version.string,
  packages = list(estimatr = as.character(packageVersion("estimatr")),
                  sandwich = as.character(packageVersion("sandwich")),
                  AER = as.character(packageVersion("AER"))),
  note = paste("estimatr se_type 'stata' is HC1 without clusters and CR1 with clusters.",
               "Lee bounds: trimmed means are integrals of the empirical quantile function;",
               "variances of the kept parts and of the untrimmed arm use divisor n (not n - 1);",
               "standard errors from Lee (2009) Proposition 3."),
  iv_cases = cases,
  aer_cases = aer_cases,
  first_stage = first_stage,
  star_blocked_ratio = blocked_ratio,
  lee_cases = lee_cases
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
           file.path(ref_dir, "iv_bounds_reference.json"))
cat("wrote", file.path(ref_dir, "iv_bounds_reference.json"), "\n")
for (cs in cases) cat(sprintf("%-18s %s: estimate %.10g se %.10g df %.6g\n", cs$id, cs$se_type,
                              cs$estimate, cs$std_error, cs$df))
for (cs in lee_cases) cat(sprintf("%-14s lower %.10g (%.6g) upper %.10g (%.6g) IM [%.8g, %.8g]\n", cs$id,
                                  cs$lower, cs$se_lower, cs$upper, cs$se_upper, cs$conf_low, cs$conf_high))
