"""Response models of `/v1/institutions/{code}/policy` (API.md "Institution policy")."""

from datetime import date, datetime

from pydantic import BaseModel, Field

from complaintcore.application.policy_store import RecordedPolicyVersion, taxonomy_document
from complaintcore.domain.policy import PolicyValue, ResolvedPolicy
from complaintcore.domain.taxonomy import Taxonomy


class TaxonomyItemOut(BaseModel):
    code: str
    label_zh: str
    label_en: str


class TaxonomyOut(BaseModel):
    business: list[TaxonomyItemOut] = Field(description="Business types, in the listed order.")
    causes: list[TaxonomyItemOut] = Field(description="Causes, in the listed order.")

    @classmethod
    def of(cls, taxonomy: Taxonomy) -> "TaxonomyOut":
        """As its column keeps it (`policy_store.taxonomy_document`)."""
        return cls.model_validate(taxonomy_document(taxonomy))


class RedressLimitsSetOut(BaseModel):
    staff: int | None = Field(description="Fen; null: not set by this version (inherited).")
    supervisor: int | None = Field(description="Fen; null: not set by this version (inherited).")


class PolicyVersionOut(BaseModel):
    """One recorded change of a node's policy; a null value is inherited."""

    version: str = Field(description="The version's id, `<institution>/v<number>`.")
    number: int = Field(description="1, 2, … per node, in recording order.")
    effective_from: date
    roll_past_holidays: bool | None
    due_soon_days: int | None
    retention_years: int | None
    redress_limits_fen: RedressLimitsSetOut
    taxonomy: TaxonomyOut | None = Field(description="null: not set by this version (inherited).")
    recorded_by: str = Field(description="The admin who recorded it.")
    recorded_at: datetime

    @classmethod
    def of(cls, recorded: RecordedPolicyVersion) -> "PolicyVersionOut":
        version, settings = recorded.version, recorded.version.settings
        return cls(
            version=version.id,
            number=version.number,
            effective_from=version.effective_from,
            roll_past_holidays=settings.roll_past_holidays,
            due_soon_days=settings.due_soon_days,
            retention_years=settings.retention_years,
            redress_limits_fen=RedressLimitsSetOut(
                staff=settings.staff_redress_limit_fen,
                supervisor=settings.supervisor_redress_limit_fen,
            ),
            taxonomy=TaxonomyOut.of(settings.taxonomy) if settings.taxonomy else None,
            recorded_by=recorded.recorded_by,
            recorded_at=recorded.recorded_at,
        )


class PolicyHistoryOut(BaseModel):
    institution: str
    versions: list[PolicyVersionOut] = Field(description="Every version, in recording order.")


class PolicyValueOut(BaseModel):
    value: bool | int
    source: str = Field(description="The code of the node that set it, or `default`.")
    version: str | None = Field(description="The id of the version that set it; null: default.")

    @classmethod
    def of(cls, value: PolicyValue) -> "PolicyValueOut":
        assert isinstance(value.value, bool | int)
        return cls(value=value.value, source=value.source, version=value.version)


class TaxonomyInForceOut(BaseModel):
    value: TaxonomyOut
    source: str = Field(description="The code of the node that set it, or `default`.")
    version: str | None = Field(description="The id of the version that set it; null: default.")

    @classmethod
    def of(cls, value: PolicyValue) -> "TaxonomyInForceOut":
        assert isinstance(value.value, Taxonomy)
        return cls(value=TaxonomyOut.of(value.value), source=value.source, version=value.version)


class RedressLimitsInForceOut(BaseModel):
    staff: PolicyValueOut
    supervisor: PolicyValueOut = Field(
        description="A head-office supervisor has no limit, whatever this says."
    )


class PolicyInForceOut(BaseModel):
    """Each value in force at the node on `on`, with where it comes from."""

    institution: str
    on: date
    version: str = Field(
        description="What a command judged that day names in `metadata.policy_version`: the "
        "ids of the versions in force along the node's lineage, head office first, or `default`."
    )
    roll_past_holidays: PolicyValueOut
    due_soon_days: PolicyValueOut
    retention_years: PolicyValueOut
    redress_limits_fen: RedressLimitsInForceOut
    taxonomy: TaxonomyInForceOut = Field(
        description="The business types and causes complaints are filed under (DOMAIN.md "
        '"Taxonomy"), each with its code and labels.'
    )

    @classmethod
    def of(cls, institution: str, resolved: ResolvedPolicy) -> "PolicyInForceOut":
        values = {
            value.name: PolicyValueOut.of(value)
            for value in resolved.values
            if value.name != "taxonomy"
        }
        return cls(
            institution=institution,
            on=resolved.on,
            version=resolved.version,
            roll_past_holidays=values["roll_past_holidays"],
            due_soon_days=values["due_soon_days"],
            retention_years=values["retention_years"],
            redress_limits_fen=RedressLimitsInForceOut(
                staff=values["redress_limits_fen.staff"],
                supervisor=values["redress_limits_fen.supervisor"],
            ),
            taxonomy=TaxonomyInForceOut.of(resolved.value_named("taxonomy")),
        )
