# Reference numbers for ips_impact careers estimators (tests/test_careers_reference.py).
#
# Run from this folder (tests/reference/r/run_all.sh does):  Rscript careers.R
# Reads ../data/careers_panel.csv (written by careers_data.py) and writes
# ../careers_reference.json: every number sits beside the R call that produced it.
# The states, spells and counting-process rows are built here from the documented rule
# (ips_impact/estimators/careers.py), independently of the Python code.
#
# Needs R >= 4.2 with survival (>= 3.5) and jsonlite.
suppressPackageStartupMessages({
  library(survival)
  library(jsonlite)
})

ref <- list(meta = list(
  R = R.version.string, survival = as.character(packageVersion("survival")),
  script = "tests/reference/r/careers.R", data = "tests/reference/data/careers_panel.csv"
))
entry <- function(call, value) list(call = call, value = value)

pan <- read.csv(file.path("..", "data", "careers_panel.csv"))
pan <- pan[order(pan$id, pan$k), ]
states <- c("work", "work_on_di", "di_only", "unemployed", "other")

# ---------------------------------------------------------------- states (the rule)
seek <- ifelse(is.na(pan$sep_code), pan$unemployment_benefit > 0,
               substr(as.character(pan$sep_code), 1, 1) == "2")
e <- pan$employed == 1
d <- pan$on_di == 1
pan$state <- ifelse(e & !d, "work", ifelse(e & d, "work_on_di", ifelse(!e & d, "di_only",
                    ifelse(seek, "unemployed", "other"))))
# follow-up: the gap-free run from k = 0 (every person is observed at k = 0 here)
pan <- do.call(rbind, lapply(split(pan, pan$id), function(p) {
  run <- cumsum(c(TRUE, diff(p$k) != 1)) == 1 & p$k[1] == 0
  p[run, ]
}))
follow <- tapply(pan$k, pan$id, max)
persons <- pan[!duplicated(pan$id), c("id", "arm", "stratum", "age")]

# ---------------------------------------------------------------- spells
spells <- do.call(rbind, lapply(split(pan, pan$id), function(p) {
  r <- rle(p$state)
  n <- length(r$lengths)
  start <- p$k[cumsum(c(1, head(r$lengths, -1)))]
  stop <- c(start[-1], max(p$k))
  to <- c(r$values[-1], "censor")
  data.frame(id = p$id[1], arm = p$arm[1], stratum = p$stratum[1], age = p$age[1],
             spell = seq_len(n), state = r$values, start = start, stop = stop, to = to)
}))
ref$spells <- list(
  n = entry("nrow(spells)", nrow(spells)),
  n_transitions = entry("sum(spells$to != 'censor')", sum(spells$to != "censor")),
  state_counts = entry("table(spells$state)[states]", as.numeric(table(factor(spells$state, states)))),
  quarters = entry("sum(stop - start + (to == 'censor'))",
                   sum(spells$stop - spells$start + (spells$to == "censor")))
)

# ---------------------------------------------------------------- Aalen–Johansen
ms <- spells[spells$stop > spells$start, ]
ms$to <- factor(ms$to, levels = c("censor", states))
ms$istate <- factor(ms$state, levels = states)
times <- 0:20
aj <- list()
for (a in c(0, 1)) {
  sub <- survfit(Surv(start, stop, to) ~ 1, data = ms[ms$arm == a, ], id = id, istate = istate)
  ss <- summary(sub, times = times, extend = TRUE)
  pcols <- match(states, sub$states)
  # with the sampling variance of the initial distribution (ips_impact's default): the
  # influence array of survfit (first slice = the start time) includes the influence of
  # the estimated p0, which survfit's std.err leaves out
  inf <- survfit(Surv(start, stop, to) ~ 1, data = ms[ms$arm == a, ], id = id, istate = istate,
                 influence = TRUE)
  slice <- findInterval(times, c(0, inf$time))
  full_se <- t(sapply(slice, function(j) sqrt(colSums(inf$influence.pstate[, j, match(states, inf$states)]^2))))
  aj[[paste0("arm", a)]] <- list(
    std_err_full = entry("sqrt(colSums(survfit(..., influence = TRUE)$influence.pstate[, k, ]^2))", unname(full_se)),
    pstate = entry(sprintf("summary(survfit(Surv(start, stop, to) ~ 1, data = ms[ms$arm == %d, ], id = id, istate = istate), times = 0:20)$pstate", a),
                   unname(ss$pstate[, pcols])),
    std_err = entry("...$std.err (infinitesimal jackknife)", unname(ss$std.err[, pcols])),
    n_risk = entry("rowSums(...$n.risk)", unname(rowSums(ss$n.risk)))
  )
}
ref$aalen_johansen <- aj

# ---------------------------------------------------------------- recurrent job starts
jobs <- do.call(rbind, lapply(split(pan, pan$id), function(p) {
  st <- p$k[-1][p$employed[-1] == 1 & head(p$employed, -1) == 0]
  cc <- max(p$k)
  if (cc < 1) return(NULL)
  stop <- c(st, cc)
  ev <- c(rep(1, length(st)), 0)
  start <- c(0, head(stop, -1))
  keep <- stop > start
  data.frame(id = p$id[1], arm = p$arm[1], stratum = p$stratum[1], age = p$age[1],
             start = start[keep], stop = stop[keep], event = ev[keep])
}))
ref$recurrent <- list(n_rows = entry("nrow(jobs)", nrow(jobs)),
                      n_events = entry("sum(jobs$event)", sum(jobs$event)))
mf <- survfit(Surv(start, stop, event) ~ arm, data = jobs, id = id)
for (a in c(0, 1)) {
  ss <- summary(mf[paste0("arm=", a)], times = 1:20, extend = TRUE)
  # Lawless–Nadeau by hand: residuals Y_i(k)/Y(k) (dN_i(k) - d(k)/Y(k)), cumulated, squared, summed
  ids <- persons$id[persons$arm == a & follow[as.character(persons$id)] >= 1]
  fu <- follow[as.character(ids)]
  Y <- sapply(1:20, function(k) sum(fu >= k))
  dN <- matrix(0, length(ids), 20)
  ja <- jobs[jobs$arm == a & jobs$event == 1, ]
  dN[cbind(match(ja$id, ids), ja$stop)] <- 1
  dk <- colSums(dN)
  risk <- outer(fu, 1:20, ">=")
  res <- risk * sweep(dN, 2, dk / Y) / matrix(Y, length(ids), 20, byrow = TRUE)
  ln_se <- sqrt(colSums(t(apply(res, 1, cumsum))^2))
  ref$recurrent[[paste0("arm", a)]] <- list(
    mcf = entry(sprintf("summary(survfit(Surv(start, stop, event) ~ arm, id = id)['arm=%d'], times = 1:20)$cumhaz", a),
                unname(ss$cumhaz)),
    std_chaz = entry("...$std.chaz (robust, id = id)", unname(ss$std.chaz)),
    mcf_hand = entry("cumsum(d(k) / Y(k))", cumsum(dk / Y)),
    se_lawless_nadeau = entry("sqrt(sum_i (cumsum_k Y_i(k)/Y(k) (dN_i(k) - d(k)/Y(k)))^2)", ln_se),
    n_risk = entry("Y(k), k = 1:20", Y)
  )
}
ag <- function(f, ties, data = jobs) {
  m <- coxph(f, data = data, ties = ties)
  list(coef = unname(coef(m)), robust_se = unname(sqrt(diag(m$var))),
       naive_se = unname(sqrt(diag(m$naive.var))))
}
ref$andersen_gill <- list(
  efron = entry("coxph(Surv(start, stop, event) ~ arm + cluster(id), data = jobs, ties = 'efron')",
                ag(Surv(start, stop, event) ~ arm + cluster(id), "efron")),
  breslow = entry("coxph(Surv(start, stop, event) ~ arm + cluster(id), data = jobs, ties = 'breslow')",
                  ag(Surv(start, stop, event) ~ arm + cluster(id), "breslow")),
  age_strata = entry("coxph(Surv(start, stop, event) ~ arm + age + strata(stratum) + cluster(id), ties = 'efron')",
                     ag(Surv(start, stop, event) ~ arm + age + strata(stratum) + cluster(id), "efron"))
)

# ---------------------------------------------------------------- transitions
tr <- function(from, to) {
  s <- ms[ms$state == from, ]
  s$hit <- as.integer(as.character(s$to) %in% to)
  m <- coxph(Surv(start, stop, hit) ~ arm + cluster(id), data = s, ties = "efron")
  na <- survfit(Surv(start, stop, hit) ~ arm, data = s, id = id)
  out <- list(coef = unname(coef(m)), robust_se = unname(sqrt(diag(m$var))), n_spells = nrow(s),
              n_events = sum(s$hit))
  for (a in c(0, 1)) {
    ss <- summary(na[paste0("arm=", a)], times = 1:20, extend = TRUE)
    out[[paste0("cumhaz_arm", a)]] <- unname(ss$cumhaz)
    out[[paste0("n_risk_arm", a)]] <- unname(ss$n.risk)
  }
  entry(sprintf("coxph(Surv(start, stop, to %%in%% c('%s')) ~ arm + cluster(id), subset = state == '%s'); survfit(...)$cumhaz",
                paste(to, collapse = "', '"), from), out)
}
ref$transitions <- list(
  work_on_di__di_only = tr("work_on_di", "di_only"),
  di_only__work = tr("di_only", c("work", "work_on_di"))
)

writeLines(toJSON(ref, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"),
           file.path("..", "careers_reference.json"))
cat("wrote ../careers_reference.json\n")
