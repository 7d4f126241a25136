"""What several commands share: resolving a model reference and a recipe."""

from __future__ import annotations


def spec_for(ref: str):
    """A zoo name or path/to/file.py:function -> its ModelSpec."""
    from edgekit.userfile import is_user_ref, load_user_spec

    if is_user_ref(ref):
        return load_user_spec(ref)
    from edgekit.model_zoo import get_spec
    return get_spec(ref)


def recipe_and_data(ref: str, spec):
    """(recipe, its training data or None) for a preset name or recipe file."""
    from edgekit.exporters.compression import load_recipe
    from edgekit.exporters.compression.finetune import data_for_spec

    recipe = load_recipe(ref)  # labelled digits for the zoo's classifiers, else label-free distillation
    return recipe, (data_for_spec(spec) if recipe.training else None)
