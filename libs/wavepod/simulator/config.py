"""What a simulated pharmacy looks like: its size, its period and its drift events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

PAYERS = ("commercial", "medicare", "medicaid", "cash")
REGIONS = ("north", "south", "east", "west")
# drug class -> (share of prescriptions, injectable)
DRUG_CLASSES: dict[str, tuple[float, bool]] = {
    "statin": (0.28, False),
    "antihypertensive": (0.26, False),
    "diabetes_oral": (0.16, False),
    "antidepressant": (0.14, False),
    "insulin": (0.08, True),
    "glp1": (0.08, True),
}


@dataclass(frozen=True)
class PayerPolicyChange:
    """From `effective`, the payer only covers `days_supply`-day fills (e.g. forced 90s)."""

    effective: date
    payer: str = "medicare"
    days_supply: int = 90


@dataclass(frozen=True)
class PharmacyOutage:
    """Retail fills due in [start, end) slip past the outage."""

    start: date
    end: date


@dataclass(frozen=True)
class PopulationShift:
    """Patients arriving from `effective` are younger and more often on medicaid."""

    effective: date
    age_shift_years: int = -15
    medicaid_share: float = 0.45


@dataclass(frozen=True)
class InjectableDrift:
    """Prescriptions starting from `effective` switch to GLP-1 injectables more often,
    and injectables are discontinued more (supply shortages)."""

    effective: date
    extra_glp1_share: float = 0.15
    extra_discontinuation: float = 0.08


@dataclass(frozen=True)
class MailShipsEarlier:
    """From `effective`, the mail pharmacy ships refills `days` earlier than it did
    (concept drift: the same features now mean an earlier refill)."""

    effective: date
    days: int = 12


@dataclass(frozen=True)
class SimulationConfig:
    patients: int = 10_000
    start: date = date(2023, 1, 1)
    end: date = date(2025, 1, 1)
    seed: int = 7
    prescriptions_per_patient: float = 1.8
    # Share of patients present on day one; the rest arrive uniformly over the period.
    initial_share: float = 0.6
    pharmacies: int = 200
    payer_policy_change: PayerPolicyChange | None = None
    pharmacy_outage: PharmacyOutage | None = None
    population_shift: PopulationShift | None = None
    injectable_drift: InjectableDrift | None = None
    mail_ships_earlier: MailShipsEarlier | None = None
    payer_mix: tuple[float, ...] = field(default=(0.5, 0.3, 0.15, 0.05))

    def __post_init__(self) -> None:
        if self.patients <= 0:
            raise ValueError(f"patients must be positive, got {self.patients}")
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        if len(self.payer_mix) != len(PAYERS) or abs(sum(self.payer_mix) - 1) > 1e-9:
            raise ValueError(f"payer_mix must have {len(PAYERS)} shares summing to 1")
